/// Unaligned 16-lane loads and stores of `Float` rows: the one way every SIMD kernel in Halo touches memory.
///
/// Rows of a `Matrix` start at arbitrary offsets (any width, sub-ranges of rows), so the kernels never assume
/// 64-byte alignment; on AVX-512 an unaligned access to aligned data costs the same as an aligned one.
@inlinable @inline(__always)
public func loadVector(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inlinable @inline(__always)
public func loadVector(_ p: UnsafeMutablePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inlinable @inline(__always)
public func storeVector(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}
