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
		username  string
		pw        passwordFlags
		poll      time.Duration
		newSecret bool
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

Webhook and poll only say "look": what runs is what the fetch brings.

On a NAME that is linked already, the link changes (a renewed token, a
moved repository, another interval): credentials not given again are
kept, and so is the webhook secret unless --new-secret.`,
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
			old, update, err := srv.MirrorOf(name)
			if err != nil {
				return err
			}
			if update {
				if !cmd.Flags().Changed("username") {
					m.Username = old.Username
				}
				if password == "" {
					m.Password = old.Password
				}
				if newSecret {
					m.Secret = gitserver.NewSecret()
				}
			}
			if err := m.Check(cmd.Context()); err != nil {
				if update {
					return fmt.Errorf("%w\nthe link was left as it was; check the URL and the credentials", err)
				}
				return fmt.Errorf("%w\nnothing was created; check the URL and the credentials", err)
			}
			m, err = srv.Link(name, m)
			if err != nil {
				return err
			}
			if update {
				fmt.Fprintf(g.streams.Err, "changed the link of %s: %s\n", name, url)
			} else {
				fmt.Fprintf(g.streams.Err, "linked %s to %s\n", name, url)
			}
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
	cmd.Flags().BoolVar(&newSecret, "new-secret", false, "on a linked repository, replace the webhook secret (the host's webhook must get the new one)")
	return cmd
}

func newRepoUnlinkCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "unlink NAME",
		Short: "End a repository's mirror: it keeps what it fetched and takes pushes here",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			srv, err := repoServer(g)
			if err != nil {
				return err
			}
			if err := srv.Unlink(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Err, "%s is no longer a mirror: it takes pushes here (a webhook to it is refused)\n", args[0])
			return nil
		},
	}
}

// mirrorNote is how `repo list` shows a mirror: its host and last fetch.
func mirrorNote(srv *gitserver.Server, name string, m gitserver.Mirror) string {
	note := "mirror of " + m.URL
	if st, ok := srv.MirrorStatus(name); !ok {
		note += "; not fetched yet"
	} else if st.Error != "" {
		note += fmt.Sprintf("; the fetch at %s failed: %s", st.At.Format(time.RFC3339), st.Error)
	} else {
		note += fmt.Sprintf("; fetched at %s (%s)", st.At.Format(time.RFC3339), st.By)
	}
	return note
}

func errOrStatus(err error, resp *http.Response) string {
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	return strings.TrimSpace(resp.Status)
}
