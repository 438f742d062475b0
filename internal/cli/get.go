package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/flux"
	"github.com/slipway-dev/slipway/internal/platform"
)

// clusterFlags choose the cluster: the local one by default, or any
// kubeconfig (AKS in a hosted pipeline).
type clusterFlags struct {
	kubeconfig string
}

func (f *clusterFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "use this kubeconfig's current context instead of the local cluster")
}

func (f *clusterFlags) rest(g *globals) (*rest.Config, error) {
	if f.kubeconfig != "" {
		return cluster.RESTConfig(f.kubeconfig)
	}
	cfg, err := g.config()
	if err != nil {
		return nil, err
	}
	if _, err := platform.ReadState(cfg.RunDir()); err != nil {
		if errors.Is(err, platform.ErrNotRunning) {
			return nil, &exitError{code: ExitNotRunning, err: err}
		}
		return nil, err
	}
	rc, err := cluster.RESTConfig(cluster.Defaults(cfg.ClusterDir()).AdminKubeconfig())
	if err != nil {
		return nil, fmt.Errorf("the local cluster is not running (no admin kubeconfig): %w", err)
	}
	return rc, nil
}

func (f *clusterFlags) dynamic(g *globals) (dynamic.Interface, error) {
	rc, err := f.rest(g)
	if err != nil {
		return nil, err
	}
	return dynamic.NewForConfig(rc)
}

func kindsHelp() string {
	var names []string
	for _, k := range flux.Kinds {
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

func newReconcileCmd(g *globals) *cobra.Command {
	var (
		cf         clusterFlags
		namespace  string
		withSource bool
		timeout    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "reconcile KIND NAME",
		Short: "Ask Flux to reconcile an object now, and wait until it has",
		Long: `Ask Flux to reconcile an object at once instead of at its next interval
(it sets the ` + flux.RequestedAtAnnotation + ` annotation, as flux reconcile does),
then wait until the controller has handled the request. With --with-source,
the object's source is reconciled first, so a chart version pushed a moment
ago is found now.`,
		Example: "  slipway reconcile ks flux-system --with-source\n  slipway reconcile hr hello -n dev1-staging --with-source",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, ok := flux.KindByName(args[0])
			if !ok {
				return usageError("unknown kind %q: want one of %s", args[0], kindsHelp())
			}
			dyn, err := cf.dynamic(g)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			_, u, err := flux.Get(ctx, dyn, kind, namespace, args[1])
			if err != nil {
				return fmt.Errorf("%s %s/%s: %w", kind.Kind, namespace, args[1], err)
			}
			if withSource {
				if sk, sns, sname, ok := flux.SourceOf(kind, u); ok {
					if err := reconcileOne(ctx, g, dyn, sk, sns, sname); err != nil {
						return err
					}
				}
			}
			return reconcileOne(ctx, g, dyn, kind, namespace, args[1])
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", flux.Namespace, "the object's namespace")
	cmd.Flags().BoolVar(&withSource, "with-source", false, "reconcile the object's source first")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long")
	cf.add(cmd)
	return cmd
}

func reconcileOne(ctx context.Context, g *globals, dyn dynamic.Interface, kind flux.Kind, ns, name string) error {
	start := time.Now()
	fmt.Fprintf(g.streams.Err, "asking Flux to reconcile %s %s/%s\n", kind.Kind, ns, name)
	stamp, err := flux.RequestReconcile(ctx, dyn, kind, ns, name)
	if err != nil {
		return err
	}
	o, err := flux.WaitHandled(ctx, dyn, kind, ns, name, stamp)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.streams.Err, "%s %s/%s reconciled in %s: %s\n", kind.Kind, ns, name, time.Since(start).Round(10*time.Millisecond), o.Message)
	return nil
}
