// Package store keeps panther-scim's durable record in a bbolt file: user and group
// records, their secondary indexes and cross-references, pending intents and the audit
// trail. It implements provision.Store; only this package imports bbolt.
//
// # File layout (schema version 4)
//
// Every top-level bucket and what its keys and values are:
//
//	meta                  "schema" -> uint64 BE; "count/users", "count/groups", "count/intents" -> uint64 BE;
//	                      "probe" -> when Check last probed a write (decimal nanos; written only while commits fail)
//	users                 id -> header (userName, active, linked) ++ JSON provision.User, zstd-compressed
//	                      with a fixed dictionary (codec.go)
//	groups                id -> header (displayName, externalId) ++ JSON provision.Group (Members in
//	                      order), zstd-compressed
//	idx/user/userName     lower(userName) -> packed id          unique
//	idx/user/email        lower(email) -> packed id             unique; not indexed when empty or equal to
//	                                                            the userName (found under the userName)
//	idx/user/pantherId    packed Panther id -> packed id        unique, empty not indexed
//	idx/user/externalId   externalId "\x00" id -> nil           not unique, empty not indexed
//	idx/group/displayName lower(displayName) -> packed id       unique
//	idx/group/externalId  externalId "\x00" id -> nil           not unique, empty not indexed
//	members               packed userID ++ packed groupID -> nil the reverse of Group.Members
//	intents               userID -> JSON provision.Intent
//	audit                 (time nanos, sign-flipped) BE ++ sequence BE -> JSON provision.AuditEntry
//	audit/outbox          sequence BE -> the entry's audit key  the export queue (export.go): entries
//	                                                            appended while the export is on and not yet
//	                                                            acknowledged, in commit order
//	invites               EmailKey(email) -> JSON provision.InviteRecord: panther-scim's invites of
//	                                                            that email, kept beyond the record and intent
//	                                                            that made them (until linked, or pruned)
//
// The meta bucket also holds "count/outbox" (entries in audit/outbox), "audit/export"
// (present while the export is on) and "export/acked" (uint64 BE: the sequence number
// of the last entry Panther acknowledged).
//
// A packed id (packed.go) is a canonical UUID as 0x00 and its 16 bytes, any other id
// as itself and 0x00. Record and index change in the same transaction, and the
// counters in meta change with them, so counts are O(1). Ids may not be empty or
// contain a NUL byte: NUL separates the parts of composite keys.
//
// Damage: Open checks the file before writing to it (damage.go): an existing empty
// file is refused unless Options.Init, a file shorter than its pages or failing
// bbolt's own consistency check is ErrDamaged, with the steps to recover. Records are
// zstd frames with a checksum (frames written before checksums were turned on decode
// without one): one that does not decode is skipped by scans and reported once
// (Health, Options.OnDamagedRecord); a panic bbolt raises on a damaged page is an
// ErrDamaged error, never the end of the process.
//
// Schema history: 1, every value JSON; 2, user records compressed; 3, a plain state
// header before each compressed user record; 4, group records compressed behind a
// header, emails equal to the userName left out of the email index, ids packed in the
// indexes (migrate4.go). The audit/outbox bucket and its meta keys came later within
// schema 4, without a version change: Open creates the bucket in a file that lacks
// it, and a release that does not know it reads and writes the file as before (it
// appends without queueing, and its retention may prune a queued entry, which the
// queue then reports as pruned). The invites bucket came the same way: a release that
// does not know it neither writes nor reads invite records (a Panther user its
// rolled-back create invited is then an existing user to its adoption policy, as it
// always was to that release), and the records it leaves are pruned by retention. Each migration runs at open: the records it changes are
// rewritten once, in small transactions, and work cut short is finished by the next
// open. A file of a newer schema than the build's is refused, so an older release
// never misreads a record.
package store
