package agent_test

// Authentication: the agent connects with each kind of Credentials to a
// server that demands it, and a rejected agent keeps running without
// becoming ready. Every server here is configured in the test (natstest
// servers have no auth), and provisioned over an authenticated connection.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanade/kanade-agent/agent"
	"github.com/kanade/kanade-agent/internal/natstest"
	"github.com/kanade/kanade-agent/provision"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// authServer starts a JetStream server configured by configure, connects
// an admin client with the options configure returns, provisions the
// protocol's streams over it and returns the server's URL and an env
// around that client (its srv is nil: start agents with runAgent).
func authServer(t *testing.T, configure func(*server.Options) []nats.Option) (string, *env) {
	t.Helper()
	so := &server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  natstest.TempDir(t),
		NoLog:     true,
		NoSigs:    true,
	}
	admin := configure(so)
	ns, err := server.NewServer(so)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready within 10 s")
	}
	// nats://, also with TLS: the client switches to TLS when the server
	// requires it, and the agent's credentials ask for it anyway.
	url := ns.ClientURL()
	nc, err := nats.Connect(url, append([]nats.Option{nats.Timeout(5 * time.Second)}, admin...)...)
	if err != nil {
		t.Fatalf("admin connect: %v", err)
	}
	t.Cleanup(nc.Close)
	e := &env{t: t, nc: nc, js: natstest.JetStream(t, nc)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := provision.Ensure(ctx, e.js); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return url, e
}

// runAgent runs an agent with pc id pcID connecting to url with creds until
// the test ends, without waiting for it to be ready.
func runAgent(t *testing.T, pcID, url string, creds agent.Credentials, tweak func(*agent.Options)) *running {
	t.Helper()
	o := agent.Options{
		PcID: pcID, DataDir: natstest.TempDir(t), Servers: []string{url}, Credentials: creds,
		Logger: testLogger(t), KillGrace: 500 * time.Millisecond, DisableInventory: true,
		ShutdownTimeout: time.Second,
	}
	if tweak != nil {
		tweak(&o)
	}
	a, err := agent.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Agent: a, dir: o.DataDir, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = a.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop")
		}
	})
	return r
}

func waitReady(t *testing.T, r *running, within time.Duration) {
	t.Helper()
	select {
	case <-r.Ready():
	case <-r.done:
		t.Fatalf("agent stopped before ready: %v", r.err)
	case <-time.After(within):
		t.Fatalf("agent not ready within %v", within)
	}
}

// writeFile writes b to name in dir and returns its path.
func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pki is a throwaway CA with a server certificate for 127.0.0.1 and
// localhost and a client certificate, all as PEM files.
type pki struct {
	caFile, serverCert, serverKey, clientCert, clientKey string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := natstest.TempDir(t)
	now := time.Now()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(0)
	template := func(cn string) *x509.Certificate {
		serial++
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(time.Hour),
		}
	}
	write := func(name string, der []byte, key *ecdsa.PrivateKey) (certFile, keyFile string) {
		certFile = writeFile(t, dir, name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		if key == nil {
			return certFile, ""
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return certFile, writeFile(t, dir, name+"-key.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	}

	caKey := newKey()
	caT := template("kanade test CA")
	caT.IsCA = true
	caT.BasicConstraintsValid = true
	caT.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	caDER, err := x509.CreateCertificate(rand.Reader, caT, caT, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(name string, usage x509.ExtKeyUsage, tweak func(*x509.Certificate)) (string, string) {
		k := newKey()
		c := template(name)
		c.KeyUsage = x509.KeyUsageDigitalSignature
		c.ExtKeyUsage = []x509.ExtKeyUsage{usage}
		if tweak != nil {
			tweak(c)
		}
		der, err := x509.CreateCertificate(rand.Reader, c, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return write(name, der, k)
	}
	var p pki
	p.caFile, _ = write("ca", caDER, nil)
	p.serverCert, p.serverKey = issue("server", x509.ExtKeyUsageServerAuth, func(c *x509.Certificate) {
		c.DNSNames = []string{"localhost"}
		c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	})
	p.clientCert, p.clientKey = issue("agent", x509.ExtKeyUsageClientAuth, nil)
	return p
}

// credsCase sets up one kind of credentials: it configures the server and
// returns the agent's credentials and the admin client's options.
type credsCase struct {
	name  string
	setup func(t *testing.T, so *server.Options) (agent.Credentials, []nats.Option)
}

func credsCases() []credsCase {
	return []credsCase{
		{"token", func(t *testing.T, so *server.Options) (agent.Credentials, []nats.Option) {
			so.Authorization = "s3cret-token"
			return agent.Credentials{Token: "s3cret-token"}, []nats.Option{nats.Token("s3cret-token")}
		}},
		{"user password", func(t *testing.T, so *server.Options) (agent.Credentials, []nats.Option) {
			so.Username, so.Password = "agent", "pa55word"
			return agent.Credentials{User: "agent", Password: "pa55word"}, []nats.Option{nats.UserInfo("agent", "pa55word")}
		}},
		{"nkey seed", func(t *testing.T, so *server.Options) (agent.Credentials, []nats.Option) {
			pub, file := nkeyUser(t)
			so.Nkeys = []*server.NkeyUser{{Nkey: pub}}
			return agent.Credentials{NKeySeedFile: file}, []nats.Option{nkeyOption(t, file)}
		}},
		{"tls client cert", func(t *testing.T, so *server.Options) (agent.Credentials, []nats.Option) {
			return tlsServer(t, so, newPKI(t))
		}},
		{"creds file", func(t *testing.T, so *server.Options) (agent.Credentials, []nats.Option) {
			file := operatorSetup(t, so)
			return agent.Credentials{CredsFile: file}, []nats.Option{nats.UserCredentials(file)}
		}},
	}
}

// nkeyUser creates an nkey user and returns its public key and the path of
// a file holding its seed.
func nkeyUser(t *testing.T) (pub, seedFile string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, err = kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	return pub, writeFile(t, natstest.TempDir(t), "user.nk", seed)
}

func nkeyOption(t *testing.T, seedFile string) nats.Option {
	t.Helper()
	o, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// tlsServer makes so require TLS with a client certificate issued by p's
// CA, and returns the agent's credentials (p's client certificate) and
// the admin client's options (the same certificate).
func tlsServer(t *testing.T, so *server.Options, p pki) (agent.Credentials, []nats.Option) {
	t.Helper()
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: p.serverCert, KeyFile: p.serverKey, CaFile: p.caFile, Verify: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if tc.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("server tls ClientAuth = %v, want RequireAndVerifyClientCert", tc.ClientAuth)
	}
	so.TLSConfig, so.TLSVerify, so.TLSTimeout = tc, true, 5
	return agent.Credentials{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey},
		[]nats.Option{nats.RootCAs(p.caFile), nats.ClientCert(p.clientCert, p.clientKey)}
}

// operatorSetup puts so in operator mode (JWT auth) with one account, with
// JetStream, held by a memory resolver, and returns the path of a .creds
// file for a user of that account.
func operatorSetup(t *testing.T, so *server.Options) string {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	okp, err := nkeys.CreateOperator()
	must(err)
	opub, err := okp.PublicKey()
	must(err)
	resolver := &server.MemAccResolver{}
	account := func(name string, js bool) (nkeys.KeyPair, string) {
		kp, err := nkeys.CreateAccount()
		must(err)
		pub, err := kp.PublicKey()
		must(err)
		ac := jwt.NewAccountClaims(pub)
		ac.Name = name
		if js {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		tok, err := ac.Encode(okp)
		must(err)
		must(resolver.Store(pub, tok))
		return kp, pub
	}
	_, sysPub := account("SYS", false)
	akp, apub := account("KANADE", true)

	ukp, err := nkeys.CreateUser()
	must(err)
	upub, err := ukp.PublicKey()
	must(err)
	uc := jwt.NewUserClaims(upub)
	uc.Name = "agent"
	uc.IssuerAccount = apub
	ujwt, err := uc.Encode(akp)
	must(err)
	seed, err := ukp.Seed()
	must(err)
	creds, err := jwt.FormatUserConfig(ujwt, seed)
	must(err)

	so.TrustedKeys = []string{opub}
	so.AccountResolver = resolver
	so.SystemAccount = sysPub
	return writeFile(t, natstest.TempDir(t), "agent.creds", creds)
}

// TestCredentialsAuthenticate runs an agent with each kind of credentials
// against a server that requires them: it becomes ready and a command's
// result reaches RESULTS.
func TestCredentialsAuthenticate(t *testing.T) {
	for i, tc := range credsCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var creds agent.Credentials
			url, e := authServer(t, func(so *server.Options) []nats.Option {
				var admin []nats.Option
				creds, admin = tc.setup(t, so)
				return admin
			})
			pc := fmt.Sprintf("pc-auth-%d", i)
			r := runAgent(t, pc, url, creds, nil)
			waitReady(t, r, 20*time.Second)
			c := cmd(noopScript)
			e.publish(pcSubject(pc), c)
			res := e.waitResult(c.RequestID, 20*time.Second)
			if res.ExitCode != 0 || res.Skipped || res.PcID != pc {
				t.Fatalf("result %+v, want exit 0 from %s", res, pc)
			}
			r.stop(t)
		})
	}
}

// TestAuthRejected runs an agent whose credentials the server refuses: it
// does not become ready, Run keeps running (it does not give up or crash),
// and Run returns nil promptly once its context ends.
func TestAuthRejected(t *testing.T) {
	tests := []credsCase{
		{"wrong token", func(t *testing.T, so *server.Options) (agent.Credentials, []nats.Option) {
			so.Authorization = "right-token"
			return agent.Credentials{Token: "wrong-token"}, []nats.Option{nats.Token("right-token")}
		}},
		{"wrong password", func(t *testing.T, so *server.Options) (agent.Credentials, []nats.Option) {
			so.Username, so.Password = "agent", "right"
			return agent.Credentials{User: "agent", Password: "wrong"}, []nats.Option{nats.UserInfo("agent", "right")}
		}},
		{"no credentials", func(t *testing.T, so *server.Options) (agent.Credentials, []nats.Option) {
			so.Authorization = "right-token"
			return agent.Credentials{}, []nats.Option{nats.Token("right-token")}
		}},
		{"unknown nkey", func(t *testing.T, so *server.Options) (agent.Credentials, []nats.Option) {
			known, admin := nkeyUser(t)
			so.Nkeys = []*server.NkeyUser{{Nkey: known}}
			_, other := nkeyUser(t) // a user the server does not know
			return agent.Credentials{NKeySeedFile: other}, []nats.Option{nkeyOption(t, admin)}
		}},
		{"tls without client cert", func(t *testing.T, so *server.Options) (agent.Credentials, []nats.Option) {
			p := newPKI(t)
			creds, admin := tlsServer(t, so, p)
			creds.CertFile, creds.KeyFile = "", ""
			return creds, admin
		}},
	}
	// Every case's server and agent run at once, and share one window: the
	// servers belong to this test, not to the subtests that check them.
	agents := make([]*running, len(tests))
	for i, tc := range tests {
		var creds agent.Credentials
		url, _ := authServer(t, func(so *server.Options) []nats.Option {
			var admin []nats.Option
			creds, admin = tc.setup(t, so)
			return admin
		})
		agents[i] = runAgent(t, fmt.Sprintf("pc-rejected-%d", i), url, creds, func(o *agent.Options) {
			// Retry fast, so the window below sees many attempts.
			o.NATSOptions = []nats.Option{nats.ReconnectWait(50 * time.Millisecond), nats.ReconnectJitter(0, 0)}
		})
	}
	// Ready and done stay closed once closed, so looking at them after the
	// window tells whether they were closed during it.
	<-time.After(1500 * time.Millisecond)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := agents[i]
			select {
			case <-r.Ready():
				t.Fatal("agent ready with credentials the server refuses")
			case <-r.done:
				t.Fatalf("Run returned while the server refuses it: %v", r.err)
			default:
			}
		})
	}
	for i, tc := range tests {
		t.Run(tc.name+" stops", func(t *testing.T) {
			r := agents[i]
			r.cancel()
			select {
			case <-r.done:
				if r.err != nil {
					t.Fatalf("Run after cancel: %v, want nil", r.err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return within 5 s of cancel")
			}
		})
	}
}

// gatedToken is a server authenticator accepting the admin token always
// and the agent's token only once opened, counting the agent's attempts.
type gatedToken struct {
	admin, agent string
	open         atomic.Bool
	refused      atomic.Int64
}

func (g *gatedToken) Check(c server.ClientAuthentication) bool {
	switch tok := c.GetOpts().Token; {
	case tok == g.admin:
		return true
	case tok == g.agent && g.open.Load():
		return true
	default:
		g.refused.Add(1)
		return false
	}
}

// TestAuthRecovers refuses the agent's credentials for a while (an account
// not pushed yet, a token being rotated in), then accepts them: the agent,
// which "waits for a server forever", must connect and become ready.
//
// nats.go closes a connection for good once the same server refuses the
// same credentials twice, unless nats.IgnoreAuthErrorAbort is set, which the
// agent does: an agent whose credentials are refused for a while (an account
// not yet on the server, a token being rotated) connects once they are
// accepted.
func TestAuthRecovers(t *testing.T) {
	tests := []struct {
		name  string
		extra []nats.Option
	}{
		{"agent options", nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gate := &gatedToken{admin: "admin-token", agent: "agent-token"}
			url, e := authServer(t, func(so *server.Options) []nats.Option {
				so.CustomClientAuthentication = gate
				return []nats.Option{nats.Token("admin-token")}
			})
			pc := fmt.Sprintf("pc-recover-%d", i)
			r := runAgent(t, pc, url, agent.Credentials{Token: "agent-token"}, func(o *agent.Options) {
				o.NATSOptions = append([]nats.Option{nats.ReconnectWait(50 * time.Millisecond), nats.ReconnectJitter(0, 0)}, tc.extra...)
			})
			natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
				if n := gate.refused.Load(); n < 3 {
					return fmt.Errorf("agent refused %d times, want 3", n)
				}
				return nil
			})
			select {
			case <-r.Ready():
				t.Fatal("agent ready while refused")
			default:
			}
			gate.open.Store(true)
			waitReady(t, r, 10*time.Second)
			c := cmd(noopScript)
			e.publish(pcSubject(pc), c)
			if res := e.waitResult(c.RequestID, 20*time.Second); res.ExitCode != 0 || res.Skipped {
				t.Fatalf("result %+v", res)
			}
			r.stop(t)
		})
	}
}

func TestCredentialsValidate(t *testing.T) {
	const (
		twoKinds = "at most one of token, user/password, creds file and nkey seed"
		certKey  = "needs both CertFile and KeyFile"
	)
	tests := []struct {
		name  string
		creds agent.Credentials
		want  string // substring of the error; "" for valid
	}{
		{"none", agent.Credentials{}, ""},
		{"token and tls", agent.Credentials{Token: "t", CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem"}, ""},
		{"user and tls config", agent.Credentials{User: "u", Password: "p", TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}}, ""},
		{"token and user", agent.Credentials{Token: "t", User: "u", Password: "p"}, twoKinds},
		{"token and creds", agent.Credentials{Token: "t", CredsFile: "a.creds"}, twoKinds},
		{"user and nkey", agent.Credentials{User: "u", NKeySeedFile: "a.nk"}, twoKinds},
		{"creds and nkey", agent.Credentials{CredsFile: "a.creds", NKeySeedFile: "a.nk"}, twoKinds},
		{"cert without key", agent.Credentials{CertFile: "c.pem"}, certKey},
		{"key without cert", agent.Credentials{CAFile: "ca.pem", KeyFile: "k.pem"}, certKey},
	}
	dir := natstest.TempDir(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := agent.Options{PcID: "pc-v", DataDir: dir, Credentials: tc.creds}
			err := o.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate: %v, want an error with %q", err, tc.want)
			}
			// New validates too, and so refuses before anything is opened.
			_, nerr := agent.New(o)
			if (err == nil) != (nerr == nil) || (err != nil && nerr.Error() != err.Error()) {
				t.Fatalf("New: %v, Validate: %v", nerr, err)
			}
		})
	}
}
