package controller

// WholeDigests counts the digests of hosts' states worked out whole.
var WholeDigests = &wholeDigests
