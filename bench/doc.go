// Package bench is the load generator of "linkbridge bench" and the
// parse-only baseline it compares the gateway with.
//
// ParseOnlyHandler is that baseline. The gateway's durable intake throughput
// divided by this handler's throughput, measured under the same load on the
// same machine, is the share of the parse cost that routing, mapping,
// logging and the SQLite commit leave over.
package bench
