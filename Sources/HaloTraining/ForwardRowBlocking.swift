import HaloTensor

/// Which layers cut their forward product `X·W` into calls of `GEMMRowBlocking.rowsPerCall` rows, decided from the
/// host's measured rates (`KernelRates.forwardRowBlockingPays(depth:)` at each layer's inner dimension): part of
/// the run's plan, the same on every rank, and recorded in the report.
///
/// Whether blocking pays depends on OpenBLAS's kernel family and the inner dimension: on a Zen 4 host its AVX2
/// kernels ran `m × 256 × 100` 7–13 % faster in blocks and its AVX-512 kernels 1–4 % slower (docs/gemm.md), so no
/// constant is right everywhere. Without a calibration nothing is blocked.
public struct ForwardRowBlocking: Sendable, Codable, Equatable {
    /// The first layer's product (inner dimension: the input features).
    public var firstLayer: Bool
    /// Every layer after the first, the output layer included (inner dimension: the hidden width; the decision
    /// was measured at output width 256, the output layer's is the class count).
    public var hiddenLayers: Bool

    public init(firstLayer: Bool, hiddenLayers: Bool) {
        self.firstLayer = firstLayer
        self.hiddenLayers = hiddenLayers
    }

    /// One call per thread everywhere: the library default, and what runs without rates.
    public static let none = ForwardRowBlocking(firstLayer: false, hiddenLayers: false)

    /// This host's decisions at the run's two depths.
    public init(rates: KernelRates, featureWidth: Int, hiddenWidth: Int) {
        self.init(firstLayer: rates.forwardRowBlockingPays(depth: featureWidth),
                  hiddenLayers: rates.forwardRowBlockingPays(depth: hiddenWidth))
    }

    /// Whether layer `l` blocks.
    public func blocks(layer l: Int) -> Bool { l == 0 ? firstLayer : hiddenLayers }

    /// Rows per call for a layer of `inputWidth` × `outputWidth` on this host's L2 cache, or nil for one call.
    /// Each rank sizes the blocks by its own cache (only the decision is agreed).
    public func rowsPerCall(layer l: Int, inputWidth: Int, outputWidth: Int,
                            cacheBytes: Int? = CacheSizes.level2Bytes) -> Int? {
        guard blocks(layer: l) else { return nil }
        return GEMMRowBlocking.rowsPerCall(n: outputWidth, k: inputWidth, cacheBytes: cacheBytes)
    }
}
