import Foundation
import HaloNN
import HaloTensor

/// The bytes a run will hold at its peak, counted before anything large is allocated, so that a run that cannot fit
/// is refused with the numbers instead of being killed by the kernel (a declared width of 2^31 − 1 used to end in
/// SIGABRT "failed to allocate …", `--layers 100000` and an ogbn-products-sized graph on four in-process ranks in
/// the OOM killer after minutes).
///
/// It follows the step the way `MemoryTally` counts it (docs/scale.md), per rank, from the shapes alone:
/// - parameters: every weight matrix `in × out` (two for GraphSAGE) held four times (value, gradient, Adam's two
///   moments);
/// - the step's peak: walking forward layer by layer and back, what forward keeps for backward at that point (the
///   hidden outputs, an aggregate-first layer's aggregate, LayerNorm's rows) plus that layer's transients (its
///   output, the rows it aggregates with their halo rows, the messages sent and received (one byte per value when
///   quantized), and backward's gradients), the largest over all layers and both directions, plus a pipelined
///   exchange's caches; in column blocks the rows and messages hold a block's columns and a cut layer's backward
///   pass its own input gradient, and a whole-graph rank's backward holds row-block buffers instead of the
///   aggregated gradient;
/// - the precomputed first aggregate, the input features and the graph structure, held throughout.
/// In-process ranks step together, so their peaks add up. What is not counted (kernel workspaces, the runtime,
/// the allocator's slack: 14–21 % on the runs of docs/scale.md) is covered by `overheadFraction` and
/// `allocatorAllowanceBytes`.
public struct MemoryEstimate: Sendable, Equatable {
    /// Copies of every weight: value, gradient and Adam's first and second moments.
    public static let parameterCopies = 4
    /// More copies with a compressed gradient all-reduce: the error-feedback residual, the decoded sum of a bucket
    /// in flight, and the owner's residual, sum and contribution (1/P of one each) with the encoded messages.
    public static let compressedReductionCopies = 3
    /// What the ranks hold beyond the counted objects: a fraction of them (kernel workspaces, the logits and loss
    /// buffers, per-thread arenas, the MPI library) and an allowance for the allocator, which keeps freed blocks
    /// under 2 GiB for reuse, up to 2 GiB at its heap's top (`AllocatorTuning`; never more than the count). The 1 GiB
    /// and the measurements below predate those 2 GiB thresholds and the single arena (2026-12-08): one rank on 1M
    /// nodes then peaked lower (4,615 against 4,813 MiB), two ranks as threads 406 MiB higher; the larger runs were
    /// not measured again. Measured beyond the count
    /// (docs/scale.md): 14 % (1M nodes, GCN 3 × 256, one rank), 21 % (2.45M nodes, SAGE 3 × 256, one rank), less
    /// than the count's for 4 MPI ranks of 1M nodes.
    public static let overheadFraction = 0.2
    public static let allocatorAllowanceBytes = 1.0 * 1_073_741_824

    /// One rank's rows: its own nodes, the halo nodes it receives, and the rows it sends to others (all peers).
    public struct RankRows: Sendable, Equatable {
        public var inner: Int
        public var halo: Int
        public var sent: Int

        public init(inner: Int, halo: Int = 0, sent: Int = 0) {
            self.inner = inner
            self.halo = halo
            self.sent = sent
        }
    }

    /// Bytes of the weights and their optimiser state, over all model replicas.
    public let parameterBytes: Double
    /// Bytes at the step's peak over all ranks: what forward keeps for backward plus the largest layer's
    /// transients (outputs, gradients, halo rows and messages), with the precomputed first aggregation.
    public let activationBytes: Double
    /// Bytes of the input features.
    public let featureBytes: Double
    /// Bytes of the graph structure (the aggregation operator and its transpose).
    public let structureBytes: Double
    /// The largest weight matrix, `in × out`, named in a refusal because it is what a huge width inflates.
    public let largestWeight: (rows: Int, cols: Int)
    /// Which widths make the largest weight: "feature width × hidden", "hidden × classes", …
    public let largestWeightMeaning: String
    /// The phase of the step where the peak falls, e.g. "forward, layer 1".
    public let peakPhase: String
    /// The column blocks the estimate assumes layers are evaluated in.
    public let columnBlocks: Int

    /// The bytes the counted objects take.
    public var countedBytes: Double { parameterBytes + activationBytes + featureBytes + structureBytes }

    /// What the allocator may keep beside them: never more than was allocated, so a small run gets a small one.
    public var allocatorBytes: Double { min(Self.allocatorAllowanceBytes, countedBytes) }

    public var totalBytes: Double { countedBytes * (1 + Self.overheadFraction) + allocatorBytes }

    /// - Parameters:
    ///   - ranks: the rows of every rank trained in this process (their peaks add up).
    ///   - inputWidth: the feature width; `classes`: the output width.
    ///   - featureBytes: the input features as held (dense `N × F × 4`, or a CSR's pointers, indices and values).
    ///   - storedEdges: entries of the aggregation operators over those ranks (edges plus self loops); 0 if unknown.
    ///   - precomputedFirstLayer: whether the first aggregation is kept as a dense `rows × inputWidth` matrix.
    ///   - sparseFeatures: whether layer 0 multiplies sparse features (it then always transforms first).
    ///   - sharedMessages: whether a message's buffer is shared by sender and receiver (in-process ranks), so that
    ///     each rank's messages count once, as received; over MPI a rank holds what it sends and what it receives.
    ///   - partStructure: whether each rank also keeps its part's in-edge lists (4 B per edge, 8 B per row).
    ///   - messageBytesPerValue: a message's bytes per value: 4 at full precision, 1 when quantized (at most 8 bits).
    ///   - pipelinedCaches: whether the exchange keeps every layer's last blocks between epochs (PipeGCN, PipeQS):
    ///     per exchanged layer, the halo rows received forward and the rows' gradients received backward.
    ///   - columnBlocks: how many column blocks layers are evaluated in (`ColumnBlocks`): the rows aggregated and
    ///     the messages then hold a block's columns.
    ///   - wholeGraph: whether the ranks are single processes holding the whole graph (no exchange): their backward
    ///     passes form the aggregated gradient a block of rows at a time (`GraphConvolution`).
    ///   - compressedGradients: whether gradients are summed by `CompressedGradientReduction`, which keeps
    ///     residuals as large as the parameters (`compressedReductionCopies`).
    ///   - forwardThroughFeatures: whether the first layer forms its forward product from the features beside the
    ///     precomputed aggregate (the plan's hybrid path): `X·W` (rows × hidden) is held while it is aggregated.
    public init(model: ModelConfiguration, ranks: [RankRows], inputWidth: Int, classes: Int, featureBytes: Double,
                storedEdges: Int = 0, precomputedFirstLayer: Bool = false, sparseFeatures: Bool = false,
                sharedMessages: Bool = false, partStructure: Bool = false, messageBytesPerValue: Double = 4,
                pipelinedCaches: Bool = false, columnBlocks: Int = 1, wholeGraph: Bool = false,
                compressedGradients: Bool = false, forwardThroughFeatures: Bool = false) {
        let float = Double(MemoryLayout<Float>.size)
        let widths = (0...model.layers).map { l -> Int in
            l == 0 ? inputWidth : l == model.layers ? classes : model.hiddenWidth
        }
        let matricesPerLayer: Double = model.kind == .sage ? 2 : 1
        var weights = 0.0
        var largest = (rows: widths[0], cols: widths[1]), largestLayer = 0
        for l in 0..<model.layers {
            weights += matricesPerLayer * Double(widths[l]) * Double(widths[l + 1])
            if Double(widths[l]) * Double(widths[l + 1]) > Double(largest.rows) * Double(largest.cols) {
                largest = (widths[l], widths[l + 1])
                largestLayer = l
            }
        }
        let copies = Self.parameterCopies + (compressedGradients ? Self.compressedReductionCopies : 0)
        parameterBytes = weights * Double(copies) * float * Double(max(ranks.count, 1))
        var peak = 0.0, largestRank = -1.0, phase = "forward, layer 0"
        for rank in ranks {
            let step = StepPeak(model: model, widths: widths, rows: rank, precomputed: precomputedFirstLayer,
                                sparseInput: sparseFeatures, sharedMessages: sharedMessages,
                                messageFloats: messageBytesPerValue / float, pipelinedCaches: pipelinedCaches,
                                columnBlocks: columnBlocks, rowBlockBackward: wholeGraph,
                                // The trainer takes the hybrid path only with the layer whole.
                                forwardThroughFeatures: precomputedFirstLayer && forwardThroughFeatures && columnBlocks == 1)
            if step.bytes > largestRank { largestRank = step.bytes; phase = step.phase }
            peak += step.bytes
        }
        let allInner = ranks.reduce(0.0) { $0 + Double($1.inner) }
        activationBytes = peak * float + (precomputedFirstLayer ? allInner * Double(inputWidth) * float : 0)
        self.featureBytes = featureBytes
        // CSR pointers (8 B) and entries (index and value, 8 B), forward and transposed.
        let pointerRows = ranks.reduce(0.0) { $0 + Double(2 * $1.inner + $1.halo) }
        structureBytes = Double(storedEdges) * (partStructure ? 20 : 16) + pointerRows * 8 + (partStructure ? allInner * 8 : 0)
        largestWeight = largest
        peakPhase = phase
        self.columnBlocks = columnBlocks
        let names = (largestLayer == 0 ? "feature width" : "hidden", largestLayer == model.layers - 1 ? "classes" : "hidden")
        largestWeightMeaning = "\(names.0) × \(names.1)"
    }

    /// The same for `replicas` ranks sharing `rows` (inner and halo together) with no messages: the bound used
    /// before a dataset is partitioned.
    /// `wholeGraph` (nil: one replica) says whether that is one process training the whole graph (its backward
    /// goes by row blocks); an MPI rank's bound before its part exists is one replica but not the whole graph.
    public init(model: ModelConfiguration, rows: Int, inputWidth: Int, classes: Int, featureBytes: Double,
                replicas: Int = 1, storedEdges: Int = 0, precomputedFirstLayer: Bool = false,
                sparseFeatures: Bool = false, columnBlocks: Int = 1, wholeGraph: Bool? = nil,
                forwardThroughFeatures: Bool = false) {
        let count = max(replicas, 1)
        self.init(model: model, ranks: Array(repeating: RankRows(inner: rows / count), count: count),
                  inputWidth: inputWidth, classes: classes, featureBytes: featureBytes, storedEdges: storedEdges,
                  precomputedFirstLayer: precomputedFirstLayer, sparseFeatures: sparseFeatures,
                  columnBlocks: columnBlocks, wholeGraph: wholeGraph ?? (count == 1),
                  forwardThroughFeatures: forwardThroughFeatures)
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.parameterBytes == b.parameterBytes && a.activationBytes == b.activationBytes
            && a.featureBytes == b.featureBytes && a.structureBytes == b.structureBytes
            && a.largestWeight == b.largestWeight && a.columnBlocks == b.columnBlocks
    }

    /// This machine's physical memory (`MemTotal`), or nil where the system does not say.
    public static var physicalMemoryBytes: Double? {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, pageSize > 0 else { return nil }
        return Double(pages) * Double(pageSize)
    }

    /// What this process may hold now: the memory the kernel reports available (`MemAvailable`, which counts
    /// reclaimable caches) plus what the process already holds (`VmRSS`: the loaded data the estimate counts too);
    /// the physical memory where the system does not say. Other processes' memory is not this run's to take.
    public static var availableToThisProcess: Double? {
        func kilobytes(_ field: String, in file: String) -> Double? {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
            return ResourceUsage.kilobytes(field, in: text).map(Double.init)
        }
        guard let available = kilobytes("MemAvailable", in: "/proc/meminfo") else { return physicalMemoryBytes }
        return (available + (kilobytes("VmRSS", in: "/proc/self/status") ?? 0)) * 1024
    }

    /// Throws when the estimate exceeds `availableBytes`, saying how much is needed, what takes it and what to change.
    /// `limit` says where `availableBytes` comes from, as the message's "…, this machine has 12.0 GiB for it".
    public func check(availableBytes: Double, limit: String = "this machine has", hint: String) throws {
        guard totalBytes > availableBytes else { return }
        func size(_ bytes: Double) -> String {
            let g = bytes / 1_073_741_824
            if g >= 100 { return String(format: "%.0f GiB", g) }
            return g >= 0.1 ? String(format: "%.1f GiB", g) : String(format: "%.1f MiB", bytes / 1_048_576)
        }
        throw TrainingSetupError(message: "this run needs about \(size(totalBytes)) of memory, \(limit) \(size(availableBytes)) for it: "
            + "parameters with gradients and Adam state \(size(parameterBytes)) (largest weight \(largestWeight.rows) × \(largestWeight.cols), \(largestWeightMeaning)), "
            + "activations, gradients and messages at the step's peak (\(peakPhase)\(columnBlocks > 1 ? ", layers in \(columnBlocks) column blocks" : "")) \(size(activationBytes)), "
            + "input features \(size(featureBytes)), graph structure \(size(structureBytes)), "
            + "with \(Int(Self.overheadFraction * 100)) % and \(size(allocatorBytes)) for the runtime and allocator; \(hint)")
    }
}

/// One rank's largest moment in a step, in floats: forward layer by layer, then backward, adding to what is kept
/// for backward at that point the transients of the layer at work. Mirrors `GraphConvolution` and `GNNModel`.
private struct StepPeak {
    var bytes = 0.0
    var phase = ""

    init(model: ModelConfiguration, widths: [Int], rows: MemoryEstimate.RankRows, precomputed: Bool, sparseInput: Bool,
         sharedMessages: Bool, messageFloats: Double, pipelinedCaches: Bool, columnBlocks: Int, rowBlockBackward: Bool,
         forwardThroughFeatures: Bool) {
        let inner = Double(rows.inner), halo = Double(rows.halo)
        // Messages in floats' worth: a quantized value takes a quarter of a float.
        let messageRows = (sharedMessages ? halo : Double(rows.sent) + halo) * messageFloats
        let layers = model.layers
        let norm = model.normalization == .layerNorm
        func transformsFirst(_ l: Int) -> Bool { (l == 0 && sparseInput) || widths[l + 1] <= widths[l] }
        func exchanges(_ l: Int) -> Bool { !(l == 0 && precomputed) }
        func messageWidth(_ l: Int) -> Double { Double(transformsFirst(l) ? widths[l + 1] : widths[l]) }
        /// The columns of the rows aggregated and of the messages at once: a block's when the layer is cut.
        func blocks(_ l: Int) -> ColumnBlocks { ColumnBlocks(width: Int(messageWidth(l)), count: columnBlocks) }
        /// What layer l keeps once its forward pass is done: its aggregate (aggregate-first), and for a hidden layer
        /// its output (the next layer's input) and LayerNorm's rows.
        func kept(_ l: Int) -> Double {
            var floats = exchanges(l) && !transformsFirst(l) ? inner * Double(widths[l]) : 0
            if l < layers - 1 { floats += inner * Double(widths[l + 1]) * (norm ? 2 : 1) + (norm ? inner : 0) }
            return floats
        }
        func consider(_ floats: Double, _ name: String) {
            if floats > bytes { bytes = floats; phase = name }
        }
        // Pipelined caches live through the whole step: each exchanged layer's received halo block and the
        // gradients received for the rows sent.
        var held = 0.0
        if pipelinedCaches {
            for l in 0..<layers where exchanges(l) { held += (halo + Double(rows.sent)) * messageWidth(l) }
        }
        for l in 0..<layers {
            let out = inner * Double(widths[l + 1])
            var transient = out
            if exchanges(l) {
                let w = Double(blocks(l).largestWidth)
                // The rows aggregated, with room for the halo rows; the messages out and in.
                transient += (inner + halo) * w + messageRows * w
                if !transformsFirst(l) { transient += inner * Double(widths[l]) }  // the aggregate being built
            }
            if l == 0 && forwardThroughFeatures { transient += out }  // X·W, aggregated into the output
            consider(held + transient, "forward, layer \(l)")
            held += kept(l)
        }
        for l in stride(from: layers - 1, through: 0, by: -1) {
            // LayerNorm keeps its rows through backward; the output gradient is where layer l starts.
            let gradient = inner * Double(widths[l + 1])
            var transient = gradient
            if rowBlockBackward && l > 0 && transformsFirst(l) && inner > Double(GraphConvolution.backwardBlockRows) {
                // One rank, by row blocks: buffers for the aggregated gradient, the input gradient and the rows of
                // the input and of the gradient they read; the input gradient is written over the input.
                transient += Double(GraphConvolution.backwardBlockRows) * 2 * Double(widths[l] + widths[l + 1])
            } else if exchanges(l) && (l > 0 || transformsFirst(l)) {
                let w = Double(blocks(l).largestWidth)
                // The aggregated gradient (inner and halo rows) and the messages out and in.
                transient += (inner + halo) * w + messageRows * w
                // The input gradient: a new matrix when aggregating first (in column blocks too: each block's
                // result replaces its columns of it), and when transforming first in column blocks, but for GCN at
                // equal widths (formed in place over the gradient). Transforming first whole, it is formed in place
                // at equal widths, and written over the layer's input (the activation's output) when narrowing.
                let inPlaceInBlocks = model.kind == .gcn && widths[l] == widths[l + 1]
                if l > 0 && (!transformsFirst(l) || (blocks(l).isSplit && !inPlaceInBlocks)) {
                    transient += inner * Double(widths[l])
                }
            } else {
                // A first layer that aggregated before its weight needs no exchange back, only its weight gradient,
                // for which the gradient's non-zeros may be listed: at most its size again.
                transient += gradient
            }
            consider(held + transient, "backward, layer \(l)")
            // Released: this layer's aggregate, and the activation above it once the layer below has its gradient.
            held -= exchanges(l) && !transformsFirst(l) ? inner * Double(widths[l]) : 0
            if l > 0 { held -= inner * Double(widths[l]) }
        }
    }
}
