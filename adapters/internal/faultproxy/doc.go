// Package faultproxy is a TCP proxy for tests that puts network faults
// between Kafka clients and an in-process cluster (franz-go's kfake): it
// can cut every connection and refuse new ones for a while (a broker
// outage), or keep connections open while forwarding nothing (a broker
// that stops answering).
//
// Proxy.Listen fits kfake.ListenFn: each broker listens on a loopback
// port of its own that only the proxy dials, and advertises the proxy's
// port for it, so clients reach the broker through the proxy at the
// bootstrap address and at every address the metadata names.
//
//	p := faultproxy.New()
//	c, err := kfake.NewCluster(kfake.ListenFn(p.Listen), ...)
//	...
//	p.Cut()     // every connection closed, new ones closed on accept
//	p.Restore() // connections go through again
//
// The proxy forwards bytes unchanged, so TLS and SASL pass through it.
package faultproxy
