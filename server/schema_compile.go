package server

// schemaSource is the source name of schemas written through the API: their errors
// print as `schema:LINE:COL: reason`, with ErrorInfo metadata file "schema".
const schemaSource = "schema"
