package resource

import (
	"strings"

	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
)

// UserSchema and GroupSchema are the resource schemas served and enforced.
var (
	UserSchema  = Schema{Core: schema.CoreUserSchema(), Extensions: []schema.Schema{schema.ExtensionEnterpriseUser()}}
	GroupSchema = Schema{Core: groupCoreSchema()}
)

// groupCoreSchema is RFC 7643's Group schema as this server enforces it: the
// library's, except that displayName is unique (uniqueness "server", compared
// case-insensitively), because mapping rules match groups by name. /Schemas serves
// this, so discovery says what the server does.
func groupCoreSchema() schema.Schema {
	s := schema.CoreGroupSchema()
	attrs := make([]schema.CoreAttribute, len(s.Attributes))
	copy(attrs, s.Attributes)
	for i, a := range attrs {
		if strings.EqualFold(a.Name(), "displayName") {
			attrs[i] = schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
				Description: optional.NewString("A human-readable name for the Group, unique in this server (case-insensitive). REQUIRED."),
				Name:        "displayName",
				Required:    true,
				Uniqueness:  schema.AttributeUniquenessServer(),
			}))
		}
	}
	s.Attributes = attrs
	return s
}
