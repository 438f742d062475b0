package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"

	"github.com/slipway-dev/slipway/internal/flux"
)

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
	_, err := flux.Reconcile(ctx, dyn, kind, ns, name, g.streams.Err)
	return err
}
