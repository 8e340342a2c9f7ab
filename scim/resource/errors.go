package resource

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	scimerrors "github.com/elimity-com/scim/errors"
)

// BadRequest is a 400 SCIM error of the given type whose detail says what is wrong.
func BadRequest(t scimerrors.ScimType, format string, args ...any) scimerrors.ScimError {
	return scimerrors.ScimError{ScimType: t, Detail: fmt.Sprintf(format, args...), Status: http.StatusBadRequest}
}

// errorBody is an RFC 7644 §3.12 error response.
type errorBody struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

// WriteError writes se as an RFC 7644 §3.12 error response, with the status of se.
// It is the one writer of SCIM error JSON: the protocol edge (scim.WriteError) decides
// what an error says, and the authentication and overload answers use it as they are.
// Headers such as Retry-After are the caller's to set first.
func WriteError(w http.ResponseWriter, se scimerrors.ScimError) {
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(se.Status)
	_ = json.NewEncoder(w).Encode(errorBody{
		Schemas:  []string{"urn:ietf:params:scim:api:messages:2.0:Error"},
		Status:   strconv.Itoa(se.Status),
		ScimType: string(se.ScimType),
		Detail:   se.Detail,
	})
}
