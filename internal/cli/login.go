package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/credentials"
	"github.com/slipway-dev/slipway/internal/platform"
)

// passwordFlags are the two ways a command takes a password.
type passwordFlags struct {
	password      string
	passwordStdin bool
}

func (p *passwordFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&p.password, "password", "p", "", "password (visible in the process list; prefer --password-stdin)")
	cmd.Flags().BoolVar(&p.passwordStdin, "password-stdin", false, "read the password from standard input")
	cmd.MarkFlagsMutuallyExclusive("password", "password-stdin")
}

// read returns the password, or "" when none was given.
func (p *passwordFlags) read(in io.Reader) (string, error) {
	if !p.passwordStdin {
		return p.password, nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usageError("--password-stdin: standard input was empty")
	}
	return line, nil
}

func newLoginCmd(g *globals) *cobra.Command {
	var user string
	var reg registryFlags
	var pw passwordFlags
	cmd := &cobra.Command{
		Use:   "login [REGISTRY]",
		Short: "Log in to a registry and store the credentials in the Docker config",
		Long: `Check a user name and password against a registry and, when the registry
accepts them, store them in the Docker config (~/.docker/config.json or
$DOCKER_CONFIG/config.json), where docker, skopeo, helm and slipway find them.
REGISTRY defaults to the embedded registry's address.`,
		Example: `  slipway login -u admin --password-stdin < /var/lib/slipway/admin-password
  echo "$DEV1_PASSWORD" | slipway login 127.0.0.1:5000 -u dev1 --password-stdin`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			registry := platform.RegistryAddr(cfg)
			if len(args) == 1 {
				registry = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSuffix(args[0], "/"), "http://"), "https://")
			}
			if user == "" {
				return usageError("name the user with -u")
			}
			password, err := pw.read(g.streams.In)
			if err != nil {
				return err
			}
			if password == "" {
				return usageError("give the password with --password-stdin (or -p)")
			}
			if err := credentials.Check(cmd.Context(), registry, user, password, reg.insecure); err != nil {
				if errors.Is(err, credentials.ErrUnauthorized) {
					return fmt.Errorf("%w; check the password (the admin's is in %s)", err, cfg.AdminPasswordFile())
				}
				return err
			}
			path, err := credentials.Save(registry, user, password)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Err, "logged in to %s as %s (saved in %s)\n", registry, user, path)
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "user name")
	reg.bind(cmd)
	pw.bind(cmd)
	return cmd
}
