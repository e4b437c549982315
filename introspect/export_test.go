package introspect

// Wait blocks until pending cache writes are applied (ristretto's Set is
// asynchronous).
func (v *Verifier) Wait() {
	v.cacheMu.RLock()
	defer v.cacheMu.RUnlock()
	if !v.cacheClosed {
		v.cache.Wait()
	}
}
