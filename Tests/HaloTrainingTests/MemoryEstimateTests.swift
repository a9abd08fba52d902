import HaloNN
import HaloTraining
import XCTest

final class MemoryEstimateTests: XCTestCase {
    private func model(_ kind: ModelConfiguration.Kind = .gcn, layers: Int, hidden: Int,
                       norm: ModelConfiguration.Normalization = .none) -> ModelConfiguration {
        ModelConfiguration(kind: kind, layers: layers, hiddenWidth: hidden, dropout: 0.5, normalization: norm)
    }

    /// The terms, counted by hand: GCN 10 → 4 → 4 → 2 on 100 rows of one rank.
    ///
    /// Every layer narrows or keeps its width, so every layer transforms first and keeps only its input. Forward of
    /// layer 1 holds the first hidden output (400 floats), its product with the weight (400) and its output (400):
    /// 1200 floats, the step's largest moment (backward of layer 2 ties it: both hidden outputs, the gradient and
    /// its aggregate, with the input gradient written over the second hidden output).
    func testCountsTheStepsPeakByHand() {
        let estimate = MemoryEstimate(model: model(layers: 3, hidden: 4), rows: 100, inputWidth: 10, classes: 2,
                                      featureBytes: 4000)
        // Weights 10·4 + 4·4 + 4·2 = 64 floats, four copies each.
        XCTAssertEqual(estimate.parameterBytes, 64 * 4 * 4)
        XCTAssertEqual(estimate.activationBytes, 1200 * 4)
        XCTAssertEqual(estimate.peakPhase, "forward, layer 1")
        XCTAssertEqual(estimate.featureBytes, 4000)
        XCTAssertEqual(estimate.structureBytes, 100 * 2 * 8, "row pointers only: no edges given")
        let counted: Double = 1024 + 4800 + 4000 + 1600
        XCTAssertEqual(estimate.countedBytes, counted)
        // A small run's allocator allowance is what it allocates at most: the counted bytes.
        XCTAssertEqual(estimate.totalBytes, counted * (1 + MemoryEstimate.overheadFraction) + counted, accuracy: 1e-6)
        XCTAssertTrue(estimate.largestWeight == (10, 4))
        XCTAssertEqual(estimate.largestWeightMeaning, "feature width × hidden")
    }

    /// Halo rows and messages: one rank of GCN 8 → 16 → 3 with 50 inner rows, 30 halo rows and 40 rows sent.
    /// Layer 0 widens, so it aggregates its 8-wide input first: its forward pass holds the output (50 × 16), the rows
    /// aggregated with their halo (80 × 8), the messages out and in (70 × 8) and the aggregate (50 × 8): 2400
    /// floats, more than layer 1's backward pass (what layer 0 kept, 1200; the gradient, its aggregate over inner
    /// and halo rows and the messages, 150 + 240 + 210; the input gradient written over the hidden output). Over MPI a
    /// rank holds what it sends and what it receives; in-process ranks share a message's buffer, so only the 30
    /// received rows count: 2400 − 40 × 8.
    func testHaloRowsAndMessages() {
        let rows = MemoryEstimate.RankRows(inner: 50, halo: 30, sent: 40)
        let mpi = MemoryEstimate(model: model(layers: 2, hidden: 16), ranks: [rows], inputWidth: 8, classes: 3,
                                 featureBytes: 0, storedEdges: 200)
        XCTAssertEqual(mpi.peakPhase, "forward, layer 0")
        XCTAssertEqual(mpi.activationBytes, 2400 * 4)
        let pointers: Double = (2 * 50 + 30) * 8
        XCTAssertEqual(mpi.structureBytes, 200 * 16 + pointers)
        let shared = MemoryEstimate(model: model(layers: 2, hidden: 16), ranks: [rows], inputWidth: 8, classes: 3,
                                    featureBytes: 0, storedEdges: 200, sharedMessages: true, partStructure: true)
        let sharedFloats: Double = 2400 - 40 * 8
        XCTAssertEqual(shared.activationBytes, sharedFloats * 4)
        let partLists: Double = 200 * 4 + 50 * 8
        XCTAssertEqual(shared.structureBytes, 200 * 16 + pointers + partLists, "plus the part's in-edge lists")
        // Four such ranks in one process: four peaks, four models.
        let four = MemoryEstimate(model: model(layers: 2, hidden: 16), ranks: Array(repeating: rows, count: 4),
                                  inputWidth: 8, classes: 3, featureBytes: 0, sharedMessages: true)
        XCTAssertEqual(four.activationBytes, 4 * shared.activationBytes)
        XCTAssertEqual(four.parameterBytes, 4 * shared.parameterBytes)
        // A compressed gradient all-reduce keeps residuals: seven copies of every weight instead of four.
        let compressed = MemoryEstimate(model: model(layers: 2, hidden: 16), ranks: Array(repeating: rows, count: 4),
                                        inputWidth: 8, classes: 3, featureBytes: 0, sharedMessages: true,
                                        compressedGradients: true)
        XCTAssertEqual(compressed.parameterBytes, four.parameterBytes * 7 / 4)
        // Quantized messages (at most 8 bits) take a quarter of a float per value: forward of layer 0 falls to
        // 2400 − 70 × 8 × 3/4 = 1980, below layer 0's backward pass (its aggregate 400, the gradient 800 and its
        // listed non-zeros, at most 800 more): 2000.
        let quantized = MemoryEstimate(model: model(layers: 2, hidden: 16), ranks: [rows], inputWidth: 8, classes: 3,
                                       featureBytes: 0, messageBytesPerValue: 1)
        XCTAssertEqual(quantized.activationBytes, 2000 * 4)
        XCTAssertEqual(quantized.peakPhase, "backward, layer 0")
        // Pipelined caches are held through the step: per exchanged layer, 70 rows (halo and sent) of its message
        // width, 70 × 8 + 70 × 3 = 770 floats beside forward's 2400.
        let pipelined = MemoryEstimate(model: model(layers: 2, hidden: 16), ranks: [rows], inputWidth: 8, classes: 3,
                                       featureBytes: 0, pipelinedCaches: true)
        XCTAssertEqual(pipelined.activationBytes, 3170 * 4)
    }

    /// Column blocks: one MPI rank of SAGE 64 → 64 → 64 → 3 with 50 inner rows, 30 halo rows and 40 rows sent.
    /// Whole, forward of layer 1 holds the first hidden output (3200 floats), its output (3200), the rows aggregated
    /// with their halo (80 × 64) and the messages (70 × 64): 16 000. In two blocks of 32 columns those two hold half,
    /// 11 200; backward of layer 1 becomes the peak: the first hidden output, the gradient (3200), a block's
    /// aggregated gradient and messages (80 × 32 + 70 × 32) and the input gradient, now a matrix of its own (3200):
    /// 14 400. The 3-wide last layer is not cut. GCN forms that input gradient in place over the gradient: 11 200.
    func testColumnBlocksHoldABlocksHaloRowsAndMessages() {
        let rows = MemoryEstimate.RankRows(inner: 50, halo: 30, sent: 40)
        func estimate(_ blocks: Int, _ kind: ModelConfiguration.Kind = .sage) -> MemoryEstimate {
            MemoryEstimate(model: model(kind, layers: 3, hidden: 64), ranks: [rows], inputWidth: 64, classes: 3,
                           featureBytes: 0, columnBlocks: blocks)
        }
        XCTAssertEqual(estimate(1, .gcn).activationBytes, 16_000 * 4)
        XCTAssertEqual(estimate(2, .gcn).activationBytes, 11_200 * 4)
        XCTAssertEqual(estimate(2, .gcn).peakPhase, "forward, layer 1")
        XCTAssertEqual(estimate(1).activationBytes, 16_000 * 4)
        XCTAssertEqual(estimate(1).peakPhase, "forward, layer 1")
        XCTAssertEqual(estimate(2).activationBytes, 14_400 * 4)
        XCTAssertEqual(estimate(2).peakPhase, "backward, layer 1")
        XCTAssertEqual(estimate(2).columnBlocks, 2)
        // Eight asked: 64 columns make at most two blocks of the minimum width.
        XCTAssertEqual(estimate(8).activationBytes, estimate(2).activationBytes)
        XCTAssertNotEqual(estimate(1), estimate(2))
    }

    /// One rank of the whole graph, GCN 16 → 64 → 64 → 3 on 100 000 rows (in floats, M = 10^6). Forward of layer 1
    /// holds layer 0's aggregate (1.6 M) and output (6.4 M), its output (6.4 M) and its product with the weight
    /// (6.4 M): 20.8 M. Backward goes by row blocks: layer 1 holds the aggregate, the first hidden output, the
    /// gradient and 8192-row buffers of both widths, twice: 8.0 + 6.4 + 2.1 M, below the forward pass. In two
    /// column blocks the product is half as wide: 17.6 M. The same rows as an MPI rank without halo rows go through
    /// the exchange: in column blocks SAGE's input gradient is a matrix of its own, 8.0 + 6.4 + 3.2 + 6.4 = 24.0 M;
    /// GCN's is formed in place over the gradient, which leaves the forward pass's 17.6 M the peak.
    func testOneRankBacksByRowBlocks() {
        let gcn = model(layers: 3, hidden: 64)
        let whole = MemoryEstimate(model: gcn, rows: 100_000, inputWidth: 16, classes: 3, featureBytes: 0)
        XCTAssertEqual(whole.activationBytes, 20_800_000 * 4)
        XCTAssertEqual(whole.peakPhase, "forward, layer 1")
        let blocked = MemoryEstimate(model: gcn, rows: 100_000, inputWidth: 16, classes: 3, featureBytes: 0, columnBlocks: 2)
        XCTAssertEqual(blocked.activationBytes, 17_600_000 * 4)
        let rank = MemoryEstimate(model: model(.sage, layers: 3, hidden: 64), ranks: [.init(inner: 100_000)],
                                  inputWidth: 16, classes: 3, featureBytes: 0, columnBlocks: 2)
        XCTAssertEqual(rank.activationBytes, 24_000_000 * 4)
        XCTAssertEqual(rank.peakPhase, "backward, layer 1")
        let gcnRank = MemoryEstimate(model: gcn, ranks: [.init(inner: 100_000)], inputWidth: 16, classes: 3,
                                     featureBytes: 0, columnBlocks: 2)
        XCTAssertEqual(gcnRank.activationBytes, 17_600_000 * 4)
        XCTAssertEqual(gcnRank.peakPhase, "forward, layer 1")
        let rowBlocks = MemoryEstimate(model: gcn, ranks: [.init(inner: 100_000)], inputWidth: 16, classes: 3, featureBytes: 0,
                                       columnBlocks: 8, wholeGraph: true)
        XCTAssertEqual(rowBlocks.activationBytes, (8_000_000 + 6_400_000 + 100_000 * 32) * 4, "layer 1's forward pass, 32 columns at a time")
    }

    func testSageReplicasAndPrecomputedAggregation() {
        let gcn = MemoryEstimate(model: model(layers: 2, hidden: 8), rows: 50, inputWidth: 6, classes: 3, featureBytes: 0)
        let sage = MemoryEstimate(model: model(.sage, layers: 2, hidden: 8), rows: 200, inputWidth: 6, classes: 3,
                                  featureBytes: 0, replicas: 4, precomputedFirstLayer: true)
        XCTAssertEqual(sage.parameterBytes, gcn.parameterBytes * 2 * 4, "two weights per SAGE layer, one model per rank")
        // Per rank (50 rows): layer 0 precomputed, so no aggregate is kept and nothing is exchanged: forward of
        // layer 0 holds only its output, but a dense copy of the first aggregate is held throughout.
        let precomputedCopy = 200.0 * 6 * 4
        XCTAssertGreaterThan(sage.activationBytes, precomputedCopy)
        let plain = MemoryEstimate(model: model(.sage, layers: 2, hidden: 8), rows: 200, inputWidth: 6, classes: 3,
                                   featureBytes: 0, replicas: 4)
        XCTAssertLessThan(sage.activationBytes - precomputedCopy, plain.activationBytes,
                          "without the first layer's aggregate and exchange, the step itself holds less")
    }

    /// The hybrid first layer (`forward_through_features`) holds `X·W` beside its output while it aggregates:
    /// one-layer GCN, 100 rows, 10 sparse features, 8 classes, aggregate precomputed. Forward of layer 0 holds the
    /// output (800 floats) and, on the hybrid path, `X·W` (800 more). Backward holds the 800-float gradient and room
    /// for its listed non-zeros (800): as much, so the hybrid path moves the peak to the forward pass without raising
    /// it (an `X·W` is always as large as that allowance). Not counted without the precomputed aggregate (no hybrid
    /// path) or in column blocks (the trainer turns it off).
    func testHybridForwardHoldsTheFeaturesProduct() {
        func estimate(precomputed: Bool = true, hybrid: Bool, blocks: Int = 1) -> MemoryEstimate {
            MemoryEstimate(model: model(layers: 1, hidden: 16), rows: 100, inputWidth: 10, classes: 8, featureBytes: 0,
                           precomputedFirstLayer: precomputed, sparseFeatures: true, columnBlocks: blocks,
                           forwardThroughFeatures: hybrid)
        }
        let aggregate = 100.0 * 10 * 4
        XCTAssertEqual(estimate(hybrid: false).activationBytes, 1600 * 4 + aggregate)
        XCTAssertEqual(estimate(hybrid: false).peakPhase, "backward, layer 0")
        XCTAssertEqual(estimate(hybrid: true).activationBytes, 1600 * 4 + aggregate)
        XCTAssertEqual(estimate(hybrid: true).peakPhase, "forward, layer 0")
        XCTAssertEqual(estimate(precomputed: false, hybrid: true).peakPhase, estimate(precomputed: false, hybrid: false).peakPhase)
        XCTAssertEqual(estimate(hybrid: true, blocks: 2).peakPhase, "backward, layer 0")
    }

    /// The estimate against runs measured on this project's machine (docs/scale.md; 2 cores, 24 GiB): it must
    /// never be below what the kernel saw, and not far above it, or it would refuse runs that fit.
    func testAgreesWithMeasuredPeaks() {
        let gib = 1_073_741_824.0
        // 1M nodes, 24,973,488 edges, 100 features, 47 classes; GCN 3 × 256, one rank, layer 0 precomputed:
        // 4776 MiB peak resident.
        let single = MemoryEstimate(model: model(layers: 3, hidden: 256), ranks: [.init(inner: 1_000_000)],
                                    inputWidth: 100, classes: 47, featureBytes: 400e6, storedEdges: 25_973_488,
                                    precomputedFirstLayer: true)
        XCTAssertGreaterThan(single.totalBytes, 4776 * 1_048_576)
        XCTAssertLessThan(single.totalBytes, 1.3 * 4776 * 1_048_576)
        // The same graph in 4 in-process parts (METIS), SAGE 3 × 256: 9854 MiB peak resident for the process.
        let inner = [242_529, 252_130, 253_171, 252_170], halo = [534_767, 507_342, 507_453, 508_000]
        let parts = MemoryEstimate(model: model(.sage, layers: 3, hidden: 256),
                                   ranks: (0..<4).map { .init(inner: inner[$0], halo: halo[$0], sent: halo[$0]) },
                                   inputWidth: 100, classes: 47, featureBytes: 400e6, storedEdges: 25_973_488,
                                   sharedMessages: true, partStructure: true)
        XCTAssertGreaterThan(parts.totalBytes, 9854 * 1_048_576)
        XCTAssertLessThan(parts.totalBytes, 1.3 * 9854 * 1_048_576)
        // 2.45M nodes, 61,222,070 edges (the products-shaped graph), SAGE 3 × 256, one rank: 12,169 MiB.
        let products = MemoryEstimate(model: model(.sage, layers: 3, hidden: 256), ranks: [.init(inner: 2_450_000)],
                                      inputWidth: 100, classes: 47, featureBytes: 980e6, storedEdges: 63_672_070,
                                      precomputedFirstLayer: true)
        XCTAssertGreaterThan(products.totalBytes, 12_169 * 1_048_576)
        XCTAssertLessThan(products.totalBytes, 1.3 * 12_169 * 1_048_576)
        // The 1M graph's parts from disk, 4 MPI ranks on this host: 2,861, 2,853, 2,891 and 2,855 MiB, 11.19 GiB in
        // all. Each rank counts the four as its own size; messages are not shared between processes.
        let mpi = MemoryEstimate(model: model(.sage, layers: 3, hidden: 256),
                                 ranks: Array(repeating: .init(inner: inner[0], halo: halo[0], sent: 493_373), count: 4),
                                 inputWidth: 100, classes: 47, featureBytes: 4 * 97e6, storedEdges: 4 * (6_029_868 + inner[0]),
                                 partStructure: true)
        XCTAssertGreaterThan(mpi.totalBytes, 4 * 2891 * 1_048_576)
        XCTAssertLessThan(mpi.totalBytes, 1.3 * (2861 + 2853 + 2891 + 2855) * 1_048_576)
        XCTAssertLessThan(single.totalBytes, 24 * gib)

        // The products-shaped graph in column blocks. One rank, 4 blocks, backward by row blocks: 9,164 and 9,777
        // MiB on two runs.
        let productsBlocked = MemoryEstimate(model: model(.sage, layers: 3, hidden: 256), ranks: [.init(inner: 2_450_000)],
                                             inputWidth: 100, classes: 47, featureBytes: 980e6, storedEdges: 63_672_070,
                                             precomputedFirstLayer: true, columnBlocks: 4, wholeGraph: true)
        XCTAssertGreaterThan(productsBlocked.totalBytes, 9777 * 1_048_576)
        XCTAssertLessThan(productsBlocked.totalBytes, 1.3 * 9164 * 1_048_576)
        // Its 4 METIS parts in process, 8 blocks: 13,255 MiB for the process.
        let productInner = [618_222, 594_301, 618_758, 618_719], productHalo = [1_243_471, 1_303_499, 1_245_062, 1_243_814]
        let productSent = [1_274_918, 1_209_325, 1_275_274, 1_276_329]
        let productParts = MemoryEstimate(
            model: model(.sage, layers: 3, hidden: 256),
            ranks: (0..<4).map { .init(inner: productInner[$0], halo: productHalo[$0], sent: productSent[$0]) },
            inputWidth: 100, classes: 47, featureBytes: 980e6,
            storedEdges: 15_468_655 + 14_757_600 + 15_504_213 + 15_491_602 + 2_450_000,
            sharedMessages: true, partStructure: true, columnBlocks: 8)
        XCTAssertGreaterThan(productParts.totalBytes, 13_255 * 1_048_576)
        XCTAssertLessThan(productParts.totalBytes, 1.3 * 13_255 * 1_048_576)
        // The same parts as 4 MPI ranks on this host, 8 blocks: 3,632 + 3,519 + 3,627 + 3,626 = 14,404 MiB.
        let productRanks = MemoryEstimate(
            model: model(.sage, layers: 3, hidden: 256),
            ranks: (0..<4).map { .init(inner: productInner[$0], halo: productHalo[$0], sent: productSent[$0]) },
            inputWidth: 100, classes: 47, featureBytes: 980e6,
            storedEdges: 15_468_655 + 14_757_600 + 15_504_213 + 15_491_602 + 2_450_000,
            partStructure: true, columnBlocks: 8)
        XCTAssertGreaterThan(productRanks.totalBytes, 14_404 * 1_048_576)
        XCTAssertLessThan(productRanks.totalBytes, 1.3 * 14_404 * 1_048_576)
    }

    /// The sizes of issue 12: a declared class count of 2^31 − 1 needs terabytes and is refused with the numbers.
    func testRefusalSaysWhatIsNeededWhatThereIsAndWhatToChange() {
        let estimate = MemoryEstimate(model: model(layers: 2, hidden: 256), rows: 2708, inputWidth: 1433,
                                      classes: 2_147_483_647, featureBytes: 100_000)
        XCTAssertGreaterThan(estimate.parameterBytes, 8e12)
        XCTAssertEqual(estimate.largestWeightMeaning, "hidden × classes")
        let gib = 1_073_741_824.0
        XCTAssertThrowsError(try estimate.check(availableBytes: 16 * gib, hint: "lower --hidden")) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.hasPrefix("this run needs about "), message)
            XCTAssertTrue(message.contains("GiB of memory, this machine has 16.0 GiB"), message)
            XCTAssertTrue(message.contains("largest weight 256 × 2147483647, hidden × classes"), message)
            XCTAssertTrue(message.contains("at the step's peak (backward, layer 1)"), message)
            XCTAssertTrue(message.hasSuffix("; lower --hidden"), message)
        }
        // Cora's real size fits easily.
        let cora = MemoryEstimate(model: model(layers: 2, hidden: 256), rows: 2708, inputWidth: 1433, classes: 7,
                                  featureBytes: 100_000)
        XCTAssertLessThan(cora.totalBytes, 0.1 * gib + MemoryEstimate.allocatorAllowanceBytes)
        XCTAssertNoThrow(try cora.check(availableBytes: 16 * gib, hint: ""))
    }

    func testPhysicalMemoryIsKnownHere() throws {
        let bytes = try XCTUnwrap(MemoryEstimate.physicalMemoryBytes)
        XCTAssertGreaterThan(bytes, 256 * 1_048_576)
    }
}
