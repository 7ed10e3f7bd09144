// Package bench is the load generator of "linkbridge bench", the
// parse-only baseline it compares the gateway with, and the seeding of
// "linkbridge bench seed" (Seed: a store filled with referrals and their
// journeys through the store's own write path; docs/performance.md).
//
// Run POSTs referral transaction Bundles (ReferralGen: each with a unique
// valid test NHS number and unique identifiers) to a gateway at a fixed
// concurrency for a fixed time, and reports throughput, latency percentiles,
// errors, CPU per request and peak RSS. The gateway is either one already
// running on this machine (Config.Target, loopback only) or one started in
// this process on a fresh store of each backend (Config.StartGateway; the
// command line starts the real "serve" command there).
//
// ParseOnlyHandler is the baseline: with Config.CompareParseOnly the same
// load runs against it. The gateway's durable intake throughput divided by
// this handler's throughput, measured under the same load on the same
// machine, is the share of the parse cost that routing, mapping, logging
// and the SQLite commit leave over.
package bench
