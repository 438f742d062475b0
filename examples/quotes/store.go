package main

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Quote is one stored quote, named by a slug.
type Quote struct {
	Slug string `json:"slug"`
	Text string `json:"text"`
}

// store keeps the quotes: PostgreSQL when the pod has a database (the
// PG* variables name it), memory otherwise.
type store interface {
	Kind() string
	List(ctx context.Context) ([]Quote, error)
	Get(ctx context.Context, slug string) (Quote, error)
	Put(ctx context.Context, q Quote) error
}

var (
	errNotFound = errors.New("no such quote")
	// errReadOnly is the database refusing writes: ops holds them while
	// the database is copied (an engine upgrade); reads still work.
	errReadOnly = errors.New("the database takes no writes right now (held for maintenance); try again shortly")
)

var seed = []Quote{
	{"small", "Ship small, ship often."},
	{"tested", "A tested version is the only one worth promoting."},
	{"artifact", "Every hand-off is an artifact."},
}

type memoryStore struct {
	mu     sync.Mutex
	quotes map[string]string
}

func newMemoryStore() *memoryStore {
	m := &memoryStore{quotes: map[string]string{}}
	for _, q := range seed {
		m.quotes[q.Slug] = q.Text
	}
	return m
}

func (m *memoryStore) Kind() string { return "memory" }

func (m *memoryStore) List(context.Context) ([]Quote, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Quote, 0, len(m.quotes))
	for s, t := range m.quotes {
		out = append(out, Quote{s, t})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Slug < out[j].Slug })
	return out, nil
}

func (m *memoryStore) Get(_ context.Context, slug string) (Quote, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.quotes[slug]
	if !ok {
		return Quote{}, errNotFound
	}
	return Quote{slug, t}, nil
}

func (m *memoryStore) Put(_ context.Context, q Quote) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.quotes[q.Slug] = q.Text
	return nil
}

type postgresStore struct{ pool *pgxpool.Pool }

// openPostgres connects with libpq's variables (PGHOST, PGUSER,
// PGPASSWORD, PGDATABASE, PGSSLMODE) and makes the schema if it is
// missing. A database held read-only already has it: the check comes
// first, since CREATE is refused in a read-only transaction even with IF
// NOT EXISTS.
func openPostgres(ctx context.Context) (*postgresStore, error) {
	cfg, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, err
	}
	// Connections are dropped when the database moves (an upgrade
	// switches its Service): a short lifetime bounds how long a stale
	// one could linger.
	cfg.MaxConnLifetime = 5 * time.Minute
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &postgresStore{pool: pool}
	var deadline = time.Now().Add(2 * time.Minute)
	for {
		err = s.migrate(ctx)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(2 * time.Second) // the database may still be starting
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func (s *postgresStore) migrate(ctx context.Context) error {
	var exists bool
	if err := s.pool.QueryRow(ctx, `select to_regclass('public.quotes') is not null`).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.Exec(ctx, `create table if not exists quotes (
		slug text primary key,
		text text not null,
		updated_at timestamptz not null default now())`); err != nil {
		return err
	}
	for _, q := range seed {
		if _, err := tx.Exec(ctx, `insert into quotes (slug, text) values ($1, $2) on conflict do nothing`, q.Slug, q.Text); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

func (s *postgresStore) Kind() string { return "postgres" }

// read runs a read once more when it fails: a connection the database
// closed (it moved, or ops ended the sessions) fails its next query, and
// the pool replaces it.
func read[T any](ctx context.Context, f func() (T, error)) (T, error) {
	v, err := f()
	if err != nil && !errors.Is(err, errNotFound) && ctx.Err() == nil {
		v, err = f()
	}
	return v, err
}

func (s *postgresStore) List(ctx context.Context) ([]Quote, error) {
	return read(ctx, func() ([]Quote, error) {
		rows, err := s.pool.Query(ctx, `select slug, text from quotes order by slug`)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Quote, error) {
			var q Quote
			err := r.Scan(&q.Slug, &q.Text)
			return q, err
		})
	})
}

func (s *postgresStore) Get(ctx context.Context, slug string) (Quote, error) {
	return read(ctx, func() (Quote, error) {
		q := Quote{Slug: slug}
		err := s.pool.QueryRow(ctx, `select text from quotes where slug = $1`, slug).Scan(&q.Text)
		if errors.Is(err, pgx.ErrNoRows) {
			return q, errNotFound
		}
		return q, err
	})
}

func (s *postgresStore) Put(ctx context.Context, q Quote) error {
	_, err := s.pool.Exec(ctx, `insert into quotes (slug, text) values ($1, $2)
		on conflict (slug) do update set text = excluded.text, updated_at = now()`, q.Slug, q.Text)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "25006" { // read_only_sql_transaction
		return errReadOnly
	}
	return err
}
