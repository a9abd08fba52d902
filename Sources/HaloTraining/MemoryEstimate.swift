import Foundation
import HaloNN

/// A rough count of the bytes a run will hold at its peak, so that a run that cannot fit is refused before it
/// allocates anything (a declared width of 2^31 − 1 used to end in SIGABRT "failed to allocate …", and
/// `--layers 100000` in the kernel's OOM killer after minutes).
///
/// Only the dominant terms are counted, each in a deliberately simple form:
/// - parameters: every weight matrix `in × out` (two for GraphSAGE: self and neighbours) held four times (value,
///   gradient, Adam's two moments), once per rank of this process;
/// - activations: each layer keeps about `activationCopies` matrices of `rows × out` floats for the backward pass
///   (aggregate, convolution output, normalised/activated output, and the gradient flowing back), where `rows`
///   counts inner and halo rows;
/// - the first aggregation, when precomputed, as a dense `rows × input width` copy;
/// - the input features as loaded.
/// Kernels' workspaces, message buffers and the allocator's slack are not counted, so the true peak is higher:
/// the estimate refuses only runs that certainly cannot fit, and never a run that could.
public struct MemoryEstimate: Sendable, Equatable {
    /// Matrices of `rows × layer width` floats a layer keeps alive between forward and backward.
    public static let activationCopies = 4
    /// Copies of every weight: value, gradient and Adam's first and second moments.
    public static let parameterCopies = 4

    /// Bytes of the weights and their optimiser state, over all model replicas.
    public let parameterBytes: Double
    /// Bytes of the activations kept for the backward pass (with the precomputed first aggregation).
    public let activationBytes: Double
    /// Bytes of the input features.
    public let featureBytes: Double
    /// The largest weight matrix, `in × out`, named in a refusal because it is what a huge width inflates.
    public let largestWeight: (rows: Int, cols: Int)
    /// Which widths make the largest weight: "feature width × hidden", "hidden × classes", …
    public let largestWeightMeaning: String

    public var totalBytes: Double { parameterBytes + activationBytes + featureBytes }

    /// - Parameters:
    ///   - rows: node rows held by this process over all its ranks (inner plus halo).
    ///   - inputWidth: the feature width; `classes`: the output width.
    ///   - featureBytes: the input features as loaded (dense `N × F × 4`, or a CSR's pointers, indices and values).
    ///   - replicas: model copies in this process (one per rank trained here).
    ///   - precomputedFirstLayer: whether the first aggregation is kept as a dense `rows × inputWidth` matrix.
    public init(model: ModelConfiguration, rows: Int, inputWidth: Int, classes: Int, featureBytes: Double,
                replicas: Int = 1, precomputedFirstLayer: Bool = false) {
        let float = Double(MemoryLayout<Float>.size)
        let widths = (0...model.layers).map { l -> Int in
            l == 0 ? inputWidth : l == model.layers ? classes : model.hiddenWidth
        }
        let matricesPerLayer: Double = model.kind == .sage ? 2 : 1
        var weights = 0.0, activations = 0.0
        var largest = (rows: widths[0], cols: widths[1]), largestLayer = 0
        for l in 0..<model.layers {
            weights += matricesPerLayer * Double(widths[l]) * Double(widths[l + 1])
            activations += Double(rows) * Double(widths[l + 1])
            if Double(widths[l]) * Double(widths[l + 1]) > Double(largest.rows) * Double(largest.cols) {
                largest = (widths[l], widths[l + 1])
                largestLayer = l
            }
        }
        parameterBytes = weights * Double(Self.parameterCopies) * float * Double(max(replicas, 1))
        activationBytes = activations * Double(Self.activationCopies) * float
            + (precomputedFirstLayer ? Double(rows) * Double(inputWidth) * float : 0)
        self.featureBytes = featureBytes
        largestWeight = largest
        let names = (largestLayer == 0 ? "feature width" : "hidden", largestLayer == model.layers - 1 ? "classes" : "hidden")
        largestWeightMeaning = "\(names.0) × \(names.1)"
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.parameterBytes == b.parameterBytes && a.activationBytes == b.activationBytes
            && a.featureBytes == b.featureBytes && a.largestWeight == b.largestWeight
    }

    /// This machine's physical memory (`MemTotal`), or nil where the system does not say.
    public static var physicalMemoryBytes: Double? {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, pageSize > 0 else { return nil }
        return Double(pages) * Double(pageSize)
    }

    /// Throws when the estimate exceeds `availableBytes`, saying how much is needed, what takes it and what to change.
    public func check(availableBytes: Double, hint: String) throws {
        guard totalBytes > availableBytes else { return }
        func gib(_ bytes: Double) -> String {
            let g = bytes / 1_073_741_824
            return g >= 100 ? String(format: "%.0f", g) : String(format: "%.1f", g)
        }
        throw TrainingSetupError(message: "this run needs about \(gib(totalBytes)) GiB of memory, this machine has \(gib(availableBytes)) GiB: "
            + "parameters with gradients and Adam state \(gib(parameterBytes)) GiB (largest weight \(largestWeight.rows) × \(largestWeight.cols), \(largestWeightMeaning)), "
            + "activations kept for the backward pass \(gib(activationBytes)) GiB, input features \(gib(featureBytes)) GiB; \(hint)")
    }
}
