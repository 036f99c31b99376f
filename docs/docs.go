// Package docs embeds the documentation that the binary itself shows: the web console
// (package console) presents each bundled model with its section of models.md.
package docs

import _ "embed"

// Models is docs/models.md, the description of the bundled permission models.
//
//go:embed models.md
var Models string
