package cli

import (
	"os"
	"os/user"

	"github.com/spf13/cobra"
)

// who names the person or pipeline acting: the pipeline's requester, else

// the login name.

func who() string {
	for _, k := range []string{"SLIPWAY_ACTOR", "BUILD_REQUESTEDFOR", "USER"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}

type appFlags struct {
	team, env string
	cf        clusterFlags
}

func (a *appFlags) add(cmd *cobra.Command, envDefault string) {
	cmd.Flags().StringVar(&a.team, "team", "", "the app's team (default: the only team with a release of that name)")
	cmd.Flags().StringVar(&a.env, "env", envDefault, "environment: staging or prod")
	a.cf.add(cmd)
}
