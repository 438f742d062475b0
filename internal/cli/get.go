package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/flux"
)

func kindsHelp() string {
	var names []string
	for _, k := range append(flux.Kinds[:len(flux.Kinds):len(flux.Kinds)], flux.NotificationKinds...) {
		names = append(names, k.Names[len(k.Names)-1])
	}
	return strings.Join(names, ", ")
}

func newGetCmd(g *globals) *cobra.Command {
	var (
		cf            clusterFlags
		namespace     string
		allNamespaces bool
		output        outputFormat
	)
	cmd := &cobra.Command{
		Use:   "get [all|sources|KIND] [NAME]",
		Short: "Show Flux's sources, Kustomizations and HelmReleases with readiness, revision and message",
		Long: `Show Flux objects the way flux get does: whether each is ready, the revision
it holds or applied, and Flux's message. KIND is one of ` + kindsHelp() + `
(or its full name); "sources" shows every source kind, "all" every kind.`,
		Example: "  slipway get all -A\n  slipway get hr -n dev1-staging\n  slipway get ks flux-system -o json",
		Args:    cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			what := "all"
			if len(args) > 0 {
				what = args[0]
			}
			var kinds []flux.Kind
			switch strings.ToLower(what) {
			case "all":
				kinds = flux.Kinds
			case "sources", "source":
				for _, k := range flux.Kinds {
					if k.Source {
						kinds = append(kinds, k)
					}
				}
			default:
				k, ok := flux.KindByName(what)
				if !ok {
					return usageError("unknown kind %q: want all, sources, or one of %s", what, kindsHelp())
				}
				kinds = []flux.Kind{k}
			}
			if len(args) == 2 && len(kinds) != 1 {
				return usageError("a NAME needs one KIND")
			}
			if allNamespaces {
				namespace = ""
			}
			dyn, err := cf.dynamic(g)
			if err != nil {
				return err
			}
			objs, err := flux.List(cmd.Context(), dyn, kinds, namespace)
			if err != nil {
				return err
			}
			if len(args) == 2 {
				var one []flux.Object
				for _, o := range objs {
					if o.Name == args[1] {
						one = append(one, o)
					}
				}
				if len(one) == 0 {
					return fmt.Errorf("%s %q not found in namespace %q", kinds[0].Kind, args[1], namespace)
				}
				objs = one
			}
			if done, err := printStructured(g.streams.Out, output, objs); done {
				return err
			}
			if len(objs) == 0 {
				fmt.Fprintf(g.streams.Err, "no Flux objects found in %s\n", nsLabel(namespace))
				return nil
			}
			tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 2, ' ', 0)
			if namespace == "" {
				fmt.Fprint(tw, "NAMESPACE\t")
			}
			fmt.Fprintln(tw, "NAME\tREVISION\tSUSPENDED\tREADY\tMESSAGE")
			for _, o := range objs {
				if namespace == "" {
					fmt.Fprintf(tw, "%s\t", o.Namespace)
				}
				fmt.Fprintf(tw, "%s/%s\t%s\t%v\t%s\t%s\n", strings.ToLower(o.Kind), o.Name, o.Revision, o.Suspended, o.Ready, oneLine(o.Message))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", flux.Namespace, "namespace to look in")
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "look in every namespace")
	addOutputFlag(cmd.Flags(), &output)
	cf.add(cmd)
	return cmd
}

func nsLabel(ns string) string {
	if ns == "" {
		return "any namespace"
	}
	return "namespace " + ns
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}
