package policy

import "github.com/gatehouse/gatehouse/internal/media"

// The content and openapi policies read media types alike: the reading
// lives in internal/media, which package openapi shares.
type mediaRange = media.Range

var (
	parseRange  = media.ParseRange
	contentType = media.ContentType
	isJSON      = media.IsJSON
	acceptable  = media.Acceptable
)
