package postgres

import (
	"context"
	"errors"

	"github.com/gatehouse/gatehouse"
)

// Apply is not implemented yet.
func (s *DB) Apply(ctx context.Context, changes []gatehouse.Change, ifDraft string) error {
	return gatehouse.Internal(errors.New("postgres: Apply is not implemented yet"))
}

// DraftTag is not implemented yet.
func (s *DB) DraftTag(ctx context.Context) (string, error) {
	return "", gatehouse.Internal(errors.New("postgres: DraftTag is not implemented yet"))
}
