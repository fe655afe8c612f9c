package orderlysarama_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlysarama"
)

const (
	scramUser     = "orderly"
	scramPassword = "correct horse battery staple"
)

// securedCluster is a kfake cluster that speaks only TLS, with a
// self-signed certificate for 127.0.0.1 made here, and authenticates with
// SASL SCRAM-SHA-256. It returns the certificate pool that trusts it.
func securedCluster(t *testing.T, partitions int32, topics ...string) (*kfake.Cluster, *x509.CertPool) {
	t.Helper()
	cert, pool := selfSigned(t)
	c := clusterWith(t, 1, partitions, topics,
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(),
		kfake.Superuser(sarama.SASLTypeSCRAMSHA256, scramUser, scramPassword))
	return c, pool
}

// selfSigned makes a certificate for 127.0.0.1 and localhost, valid for a
// day, and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kfake"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	parsed, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(parsed)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: parsed}, pool
}

// secured sets cfg up for TLS trusting pool (nil: the system roots) and
// SASL SCRAM-SHA-256 as user with password.
func secured(cfg *sarama.Config, pool *x509.CertPool, user, password string) *sarama.Config {
	cfg.Net.TLS.Enable = true
	cfg.Net.TLS.Config = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
	cfg.Net.SASL.User = user
	cfg.Net.SASL.Password = password
	cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{} }
	return cfg
}

// scramClient is sarama's SCRAMClient over franz-go's SCRAM-SHA-256
// mechanism: sarama leaves the SCRAM implementation to its user.
type scramClient struct {
	session sasl.Session
	first   []byte // the client-first message, sent on the first Step
	done    bool
}

func (s *scramClient) Begin(user, password, authzID string) error {
	mech := scram.Auth{User: user, Pass: password, Zid: authzID}.AsSha256Mechanism()
	session, first, err := mech.Authenticate(context.Background(), "")
	s.session, s.first = session, first
	return err
}

func (s *scramClient) Step(challenge string) (string, error) {
	if s.first != nil {
		first := s.first
		s.first = nil
		return string(first), nil
	}
	done, msg, err := s.session.Challenge([]byte(challenge))
	s.done = done
	return string(msg), err
}

func (s *scramClient) Done() bool { return s.done }

// The engine consumes over TLS with SASL SCRAM-SHA-256, from a producer
// that is secured the same way: every record is handled and the commits
// reach the end of the partitions.
func TestTLSAndSCRAM(t *testing.T) {
	t.Parallel()
	const partitions, records = 2, 60
	c, pool := securedCluster(t, partitions, "t")
	pcfg := secured(orderlysarama.DefaultConfig(), pool, scramUser, scramPassword)
	p, err := orderlysarama.NewProducer(c.ListenAddrs(), pcfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	end := make([]int64, partitions)
	for i := range records {
		part, off, err := p.Produce(context.Background(), "t", []byte("k"+strconv.Itoa(i%7)), []byte(strconv.Itoa(i)))
		require.NoError(t, err)
		end[part] = max(end[part], off+1)
	}

	cfg := secured(config(nil), pool, scramUser, scramPassword)
	h := newHandled()
	eng, err := orderly.New(newSource(t, c, "g", cfg, "t"), orderly.HandlerFunc(func(_ context.Context, r *orderly.Record) error {
		h.add(r)
		return nil
	}), orderly.WithLogger(quiet), orderly.WithCommitInterval(20*time.Millisecond))
	require.NoError(t, err)
	stop := running(t, eng)
	require.Eventually(t, func() bool { return h.distinct() == records }, 30*time.Second, time.Millisecond, "every record handled")
	admin := secured(orderlysarama.DefaultConfig(), pool, scramUser, scramPassword)
	require.Eventually(t, func() bool {
		pos := committedWith(t, c, admin, "g", "t", partitions)
		return pos[0].Offset == end[0] && pos[1].Offset == end[1]
	}, 30*time.Second, 10*time.Millisecond, "commits reach the end of every partition")
	require.NoError(t, stop())
}

// A wrong password or an untrusted certificate is no outage: Run returns
// an error wrapping ErrAuthentication and sarama's cause, instead of
// retrying for ever; so does a user the cluster's ACLs grant nothing, with
// ErrAuthorization.
//
// kfake closes the connection on a failed SCRAM exchange without
// answering, which a client cannot tell from a broker going away; Kafka
// answers SaslAuthenticate with SASL_AUTHENTICATION_FAILED and a message
// first (KIP-152). The wrong-password case gets that answer from a
// control function standing in for the broker's verdict on the client's
// proof (the client-final message, "c=...,r=...,p=...").
func TestAuthenticationAndACLFailuresEndRun(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, c *kfake.Cluster, cfg *sarama.Config) error {
		t.Helper()
		eng, err := orderly.New(newSource(t, c, "g", cfg, "t"), orderly.HandlerFunc(func(context.Context, *orderly.Record) error { return nil }),
			orderly.WithLogger(quiet))
		require.NoError(t, err)
		ran := make(chan error, 1)
		go func() { ran <- eng.Run(context.Background()) }()
		select {
		case err = <-ran:
		case <-time.After(30 * time.Second):
			t.Fatal("Run still retrying after 30s")
		}
		t.Logf("Run: %v", err)
		return err
	}

	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		c, pool := securedCluster(t, 1, "t")
		c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			r := req.(*kmsg.SASLAuthenticateRequest)
			if !bytes.HasPrefix(r.SASLAuthBytes, []byte("c=")) {
				return nil, nil, false // client-first: kfake answers
			}
			resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
			resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
			resp.ErrorMessage = kmsg.StringPtr("Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256")
			return resp, nil, true
		})
		err := run(t, c, secured(config(nil), pool, scramUser, "wrong"))
		require.ErrorIs(t, err, orderlysarama.ErrAuthentication)
		require.ErrorIs(t, err, sarama.ErrSASLAuthenticationFailed)
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		c, _ := securedCluster(t, 1, "t")
		err := run(t, c, secured(config(nil), x509.NewCertPool(), scramUser, scramPassword))
		require.ErrorIs(t, err, orderlysarama.ErrAuthentication)
		var unknown x509.UnknownAuthorityError
		require.ErrorAs(t, err, &unknown)
	})
	t.Run("denied by ACLs", func(t *testing.T) {
		t.Parallel()
		cert, pool := selfSigned(t)
		c := clusterWith(t, 1, 1, []string{"t"},
			kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}),
			kfake.EnableSASL(),
			kfake.Superuser(sarama.SASLTypeSCRAMSHA256, scramUser, scramPassword),
			kfake.EnableACLs(),
			kfake.User(sarama.SASLTypeSCRAMSHA256, "reader", scramPassword)) // no ACL grants it anything
		err := run(t, c, secured(config(nil), pool, "reader", scramPassword))
		require.ErrorIs(t, err, orderlysarama.ErrAuthorization)
	})
}
