package scim

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	scimerrors "github.com/elimity-com/scim/errors"

	"github.com/panther-scim/panther-scim/internal/provision"
	"github.com/panther-scim/panther-scim/scim/resource"
)

// storeRetryAfterSeconds is the Retry-After of a write the store could not commit:
// freeing disk space takes a person, so there is no point in a fast retry.
const storeRetryAfterSeconds = 30

// WriteError answers err as an RFC 7644 error body (resource.WriteError). It is the
// one place that decides what an error says: ScimError values as they are,
// provisioning errors by code, and anything else as an opaque 500 whose cause goes to
// the log only.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	ctx := r.Context()
	status, scimType, detail := http.StatusInternalServerError, "", "Internal server error."
	var se scimerrors.ScimError
	var sep *scimerrors.ScimError
	var pe *provision.Error
	switch {
	case errors.Is(err, provision.ErrStoreWrite):
		// Disk full or an I/O error: nothing was written, and the IdP's retry may
		// succeed once the operator has made room. Not a 500, which IdPs may not retry.
		log.ErrorContext(ctx, "request failed: the store cannot write", "err", err)
		status, detail = http.StatusServiceUnavailable, "The server cannot save changes right now; nothing was changed. Retry later."
		w.Header().Set("Retry-After", strconv.Itoa(storeRetryAfterSeconds))
	case errors.As(err, &pe):
		detail = pe.Detail
		switch pe.Code {
		case provision.CodeInvalid:
			status, scimType = http.StatusBadRequest, string(scimerrors.ScimTypeInvalidValue)
		case provision.CodeUniqueness:
			status, scimType = http.StatusConflict, string(scimerrors.ScimTypeUniqueness)
		case provision.CodeConflict:
			status = http.StatusConflict
		case provision.CodeNotFound:
			status = http.StatusNotFound
		case provision.CodePrecondition:
			status = http.StatusPreconditionFailed
		case provision.CodeTooMany:
			status, scimType = http.StatusBadRequest, string(scimerrors.ScimTypeTooMany)
		case provision.CodeUnavailable:
			status = http.StatusServiceUnavailable
			secs := int(math.Ceil(pe.RetryAfter.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		default:
			status, detail = http.StatusInternalServerError, "Internal server error."
			log.ErrorContext(ctx, "request failed", "err", err)
		}
	case errors.As(err, &sep):
		status, scimType, detail = sep.Status, string(sep.ScimType), sep.Detail
	case errors.As(err, &se):
		status, scimType, detail = se.Status, string(se.ScimType), se.Detail
	case errors.Is(err, context.Canceled):
		// The client went away (or the server is closing its connections): nobody reads
		// this answer, and it is no server error.
		status, detail = StatusClientClosedRequest, "The request was cancelled."
		log.InfoContext(ctx, "request cancelled: the client closed the connection", "status", status)
	default:
		log.ErrorContext(ctx, "request failed", "err", err)
	}
	if status == http.StatusInternalServerError && detail != "Internal server error." {
		// Never pass an unexpected message through: it may carry Panther's text.
		log.ErrorContext(ctx, "request failed", "err", err)
		detail = "Internal server error."
	}
	resource.WriteError(w, scimerrors.ScimError{Status: status, ScimType: scimerrors.ScimType(scimType), Detail: detail})
}
