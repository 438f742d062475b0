package cli

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/gitserver"
)

func newRepoLinkCmd(g *globals) *cobra.Command {
	var (
		username string
		pw       passwordFlags
		poll     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "link NAME URL",
		Short: "Mirror a repository of an external git host (Azure Repos, GitHub, any smart-HTTP host)",
		Long: `Keep a read-only copy of a repository that lives on another git host, under
NAME here, so its pushes run the pipeline as pushes here do. The copy
follows the host by fetching: when the host's webhook says so, every
--poll interval, and at each start of the platform. Nothing can be pushed
to the copy; push to the host.

The host is read first with the credentials (a personal access token on
Azure Repos or GitHub); nothing is created if it refuses them. The
command prints the webhook's URL and secret, for the host's settings:

  GitHub        Settings > Webhooks: the URL, content type
                application/json, the secret (signed, X-Hub-Signature-256)
  Azure DevOps  Project settings > Service hooks > Web Hooks, "Code
                pushed": the URL, basic authentication with any user name
                and the secret as the password
  other hosts   POST to the URL with "Authorization: Bearer SECRET"

Webhook and poll only say "look": what runs is what the fetch brings.`,
		Example: `  echo "$AZURE_PAT" | slipway repo link dev1/hello https://dev.azure.com/org/project/_git/hello --username pat --password-stdin
  slipway repo link dev2/quotes https://github.com/example/quotes.git --poll 1m`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, url := args[0], args[1]
			password, err := pw.read(g.streams.In)
			if err != nil {
				return err
			}
			if poll != 0 && poll < gitserver.MinPoll {
				return usageError("--poll %s: the shortest interval is %s", poll, gitserver.MinPoll)
			}
			if err := gitserver.ValidateName(name); err != nil {
				return usageError("%v", err)
			}
			m := gitserver.Mirror{URL: url, Username: username, Password: password, Poll: gitserver.Duration(poll)}
			srv, err := repoServer(g)
			if err != nil {
				return err
			}
			if err := m.Check(cmd.Context()); err != nil {
				return fmt.Errorf("%w\nnothing was created; check the URL and the credentials", err)
			}
			m, err = srv.Link(name, m)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Err, "linked %s to %s\n", name, url)
			hook := gitserver.WebhookPath + name
			if p, err := g.attach(); err == nil {
				hook = p.GitURL() + hook
				// The running platform fetches at once (the first run of
				// the pipeline, if the host has one).
				req, _ := http.NewRequestWithContext(cmd.Context(), http.MethodPost, hook, nil)
				req.Header.Set("Authorization", "Bearer "+m.Secret)
				if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
					fmt.Fprintf(g.streams.Err, "the platform did not take the first fetch (%v); it fetches at its next start\n", errOrStatus(err, resp))
				} else {
					resp.Body.Close()
					fmt.Fprintf(g.streams.Err, "the platform is fetching it now: slipway pipeline list shows the run\n")
				}
			} else {
				hook = "https://GIT-SERVER" + hook
				fmt.Fprintf(g.streams.Err, "the platform is not running: it fetches %s at its next start\n", name)
			}
			fmt.Fprintf(g.streams.Out, "webhook: %s\nsecret:  %s\n", hook, m.Secret)
			if poll > 0 {
				fmt.Fprintf(g.streams.Out, "polling: every %s\n", poll)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&username, "username", "u", "", "user name on the host (any, for a personal access token)")
	pw.bind(cmd)
	cmd.Flags().DurationVar(&poll, "poll", 0, "also fetch at this interval (at least 10s); without it, on webhooks and at start")
	return cmd
}

func errOrStatus(err error, resp *http.Response) string {
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	return strings.TrimSpace(resp.Status)
}
