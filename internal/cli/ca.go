package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/trust"
)

func newCACmd(g *globals) *cobra.Command {
	var path, bundle bool
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Print the platform's CA certificate, which the registry and git server present",
		Long: `The registry and the git server serve HTTPS with a certificate of the
platform's own CA, made by the first ` + "`slipway up`" + ` and kept in the state
directory. slipway itself, pipeline jobs, containerd and Flux trust it
without being told. Other clients are given the certificate:

  slipway ca > slipway-ca.crt
  git config --global http.https://127.0.0.1:3000/.sslCAInfo "$(slipway ca --path)"
  helm push CHART.tgz oci://127.0.0.1:5000/TEAM/charts --ca-file "$(slipway ca --path)"
  mkdir -p certs && slipway ca > certs/ca.crt && skopeo copy --dest-cert-dir certs ...
  mkdir -p /etc/docker/certs.d/127.0.0.1:5000 && slipway ca > /etc/docker/certs.d/127.0.0.1:5000/ca.crt
  flux create source helm NAME --url oci://... --ca-file "$(slipway ca --path)"

--bundle prints the path of the system's CAs followed by the platform's,
for SSL_CERT_FILE or GIT_SSL_CAINFO.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path && bundle {
				return usageError("--path and --bundle: choose one")
			}
			cfg, err := g.config()
			if err != nil {
				return err
			}
			f := trust.Files{Dir: cfg.TLSDir()}
			if !f.Exists() {
				return &exitError{code: ExitNotRunning, err: errors.New("the platform has no CA yet: `slipway up` makes it")}
			}
			switch {
			case path:
				fmt.Fprintln(g.streams.Out, f.CA())
			case bundle:
				fmt.Fprintln(g.streams.Out, f.Bundle())
			default:
				data, err := os.ReadFile(f.CA())
				if err != nil {
					return err
				}
				_, err = g.streams.Out.Write(data)
				return err
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&path, "path", false, "print the certificate's file name instead")
	cmd.Flags().BoolVar(&bundle, "bundle", false, "print the file name of the system's CAs followed by the platform's")
	return cmd
}
