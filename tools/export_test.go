package tools

// Compute is compute, for the external tests.
var Compute = compute
