// Package auditexport streams the audit trail to a Panther HTTP log source, so that a
// security team watches provisioning in Panther with the rest of its logs.
//
// Delivery is at least once and durable. The store queues every audit entry in the
// transaction that appends it (store.Bolt.NextExport, AckExport); the Exporter reads
// the oldest entries, sends them as one request of JSON lines (Event, the
// Custom.PantherSCIM.Audit log type of deploy/panther), and removes them from the
// queue only once the source answered 2xx. A restart, or a kill -9, resumes from the
// queue: nothing is lost, and a batch is sent twice only when the process stopped
// between Panther's answer and the queue's commit, or when the answer was lost on the
// way; every event carries its entry's stable eventId for a reader to drop the copy.
//
// Failures are retried forever with exponential backoff and jitter (Retry-After
// honoured), counted by reason; a 413 halves the batch. The exporter runs on its own
// goroutine and SCIM requests never wait for it.
package auditexport
