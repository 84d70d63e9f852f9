package main

// The first admin token of a new installation, made by serve.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/gatehouse/gatehouse"
)

// bootstrapToken gives a new installation its first admin token: the value
// of GATEHOUSE_ADMIN_TOKEN if set, otherwise a random one, printed once and
// written to <data-dir>/admin-token with mode 0600.
//
// The file is written before the token is stored. In the other order, a
// failed write or a crash in between would leave a stored token that nobody
// was shown, and every later start, finding a token, would make no new one:
// the installation would have no usable admin token.
func bootstrapToken(ctx context.Context, store gatehouse.Store, dataDir string, stderr io.Writer) error {
	n, err := store.Count(ctx, gatehouse.KindToken)
	if err != nil {
		return err
	}
	if n > 0 {
		if os.Getenv("GATEHOUSE_ADMIN_TOKEN") != "" {
			slog.Warn("GATEHOUSE_ADMIN_TOKEN is ignored: the store already has admin tokens")
		}
		return nil
	}
	secret := os.Getenv("GATEHOUSE_ADMIN_TOKEN")
	fromEnv := secret != ""
	if fromEnv {
		if err := checkBootstrapToken(secret); err != nil {
			return err
		}
	}
	tok := gatehouse.NewToken()
	tok.ID, tok.Name = "bootstrap", "bootstrap"
	hash := tok.SealWith(secret)
	path := filepath.Join(dataDir, "admin-token")
	if !fromEnv {
		if err := writeSecretFile(path, []byte(tok.Token+"\n")); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	restore := tok.Redact()
	rec, err := gatehouse.Encode(tok, hash)
	restore()
	if err == nil {
		err = store.Create(ctx, rec)
	}
	if err != nil {
		if !fromEnv {
			os.Remove(path)
		}
		return fmt.Errorf("create bootstrap admin token: %w", err)
	}
	if fromEnv {
		slog.Info("created the bootstrap admin token from GATEHOUSE_ADMIN_TOKEN")
		return nil
	}
	fmt.Fprintf(stderr, "\nGenerated the admin token (shown once; also saved to %s):\n\n    %s\n\n", path, tok.Token)
	return nil
}

// minBootstrapToken is the shortest GATEHOUSE_ADMIN_TOKEN accepted. Admin
// tokens are stored as one SHA-256 (gatehouse.HashToken, meant for
// high-entropy secrets): a short one could be found from a copy of the
// store. 32 characters of base64 are 192 bits.
const minBootstrapToken = 32

// checkBootstrapToken refuses a GATEHOUSE_ADMIN_TOKEN that is too short or
// that a bearer header cannot carry as it is. The error never repeats it.
func checkBootstrapToken(secret string) error {
	for i := 0; i < len(secret); i++ {
		if secret[i] < 0x21 || secret[i] > 0x7e {
			return errors.New("GATEHOUSE_ADMIN_TOKEN must be printable ASCII without spaces")
		}
	}
	if len(secret) < minBootstrapToken {
		return fmt.Errorf("GATEHOUSE_ADMIN_TOKEN must be at least %d characters, and it has %d: "+
			"use a random one, such as the output of `openssl rand -base64 32`", minBootstrapToken, len(secret))
	}
	return nil
}

// writeSecretFile replaces path with a file holding data, readable by its
// owner only: written to a temporary file, synced and renamed into place,
// so that neither a crash leaves a partial file nor an existing file lends
// the secret its permissions.
func writeSecretFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".admin-token-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return err
	}
	// Make the rename itself durable.
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
