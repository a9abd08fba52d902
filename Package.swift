// swift-tools-version: 6.0
//
// Halo: distributed full-graph GNN training with quantized, overlapped and pipelined messages.
//
// The module graph mirrors the architecture:
//   CBLAS (OpenBLAS)      system library: dense GEMM
//   CSystem               C library headers Swift's Glibc module leaves out (malloc tuning, renameat2)
//   HaloTensor            tensor math: matrices, GEMM, CSR SpMM, elementwise kernels, parallel-for, counter RNG
//   HaloGraph             graph & datasets: CSR graphs, normalisation, the dataset format, synthetic graphs
//   HaloQuantization      stochastic integer quantization of message rows (2/4/8 bit), fused pack/unpack
//   HaloAssignment        AdaQP's adaptive bit-width assignment: variance/traffic model and its exact solver
//   CMetis (METIS)        system library: k-way graph partitioning
//   HaloPartition         partitions: METIS/random assignment, per-rank parts with halo and send/recv lists
//   HaloTransport         the Transport protocol and the in-process (threads) transport
//   CMPI (OpenMPI)        system library: message passing between processes and machines
//   HaloMPI               the MPI transport
//   HaloTransportTesting  a scripted transport for tests of late messages
//   HaloNN                neural layers with hand-written backward passes, losses, optimiser
//   HaloTraining          training strategies, metrics and the machine-readable report
//   HaloTensorBoard       TensorBoard event files of a run (TFRecord framing, CRC-32C, Event/Summary scalars)
//   HaloReportPage        the self-contained HTML page comparing runs' reports (inline SVG charts)
//   CZlib (zlib)          system library: gzip and zip-deflate decompression, CRC-32
//   HaloImport            importers: OGB node-property directories and gnn-benchmark .npz files to halo-dataset
//   halo                  the command-line interface
//
// Release builds for benchmarking pass `-Xswiftc -target-cpu -Xswiftc native` on the command line (see README);
// the package itself does not force a CPU so library users get portable binaries.
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "Halo",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "halo", targets: ["halo"]),
        .library(name: "HaloTraining", targets: ["HaloTraining"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(name: "CSystem"),
        .systemLibrary(name: "CMetis", providers: [.apt(["libmetis-dev"])]),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi", providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        // zlib through a system-library target rather than a package: ZIPFoundation reads zip archives but not
        // gzip streams, and compress-nio needs swift-nio (a build several times Halo's own) for two C calls.
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "HaloTensor", dependencies: ["CBLAS", "CSystem"], swiftSettings: strictSettings),
        .target(name: "HaloGraph", dependencies: ["HaloTensor"], swiftSettings: strictSettings),
        .target(name: "HaloQuantization", dependencies: ["HaloTensor"], swiftSettings: strictSettings),
        .target(name: "HaloAssignment", dependencies: ["HaloQuantization"], swiftSettings: strictSettings),
        .target(name: "HaloPartition", dependencies: ["HaloGraph", "CMetis", "CSystem"], swiftSettings: strictSettings),
        .target(name: "HaloTransport", swiftSettings: strictSettings),
        .target(name: "HaloMPI", dependencies: ["HaloTransport", "CMPI"], swiftSettings: strictSettings),
        .target(name: "HaloNN", dependencies: ["HaloTensor", "HaloGraph"], swiftSettings: strictSettings),
        .target(
            name: "HaloTraining",
            dependencies: ["HaloTensor", "HaloGraph", "HaloNN", "HaloPartition", "HaloTransport", "HaloQuantization", "HaloAssignment"],
            swiftSettings: strictSettings
        ),
        .target(name: "HaloTensorBoard", dependencies: ["HaloTraining"], swiftSettings: strictSettings),
        .target(name: "HaloReportPage", dependencies: ["HaloTraining"], swiftSettings: strictSettings),
        .target(name: "HaloImport", dependencies: ["HaloGraph", "HaloTensor", "CZlib"], swiftSettings: strictSettings),
        .executableTarget(
            name: "halo",
            dependencies: [
                "HaloTraining",
                "HaloNN",
                "HaloTensorBoard",
                "HaloReportPage",
                "HaloImport",
                "HaloQuantization",
                "HaloTransport",
                "HaloMPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSettings
        ),
        // Helpers shared by the test targets (a seedable generator, the directory fuzzer's mutations); not part of
        // any product.
        .target(name: "HaloTestSupport", dependencies: ["HaloGraph"], swiftSettings: strictSettings),
        // A transport whose channel deliveries a test scripts (late, never before asked twice, …), like swift-nio's
        // embedded channel: late-message paths tested deterministically, without sleeps.
        .target(name: "HaloTransportTesting", dependencies: ["HaloTransport"], swiftSettings: strictSettings),
        // Reads TensorBoard event files back (framing, both CRCs, Event messages) with code of its own, so the tests of
        // the writer and of `halo train --tensorboard` do not check the writer against itself.
        .target(name: "HaloTensorBoardTesting", swiftSettings: strictSettings),
        // Writers of the inputs `halo import` reads (OGB csv trees, gzip, zip, .npy), so tests build their fixtures
        // without Python or numpy.
        .target(name: "HaloImportTesting", dependencies: ["HaloGraph", "CZlib"], swiftSettings: strictSettings),
        .testTarget(name: "HaloTensorTests", dependencies: ["HaloTensor", "HaloTestSupport"]),
        .testTarget(name: "HaloGraphTests", dependencies: ["HaloGraph"]),
        .testTarget(name: "HaloNNTests", dependencies: ["HaloNN", "HaloTestSupport"]),
        .testTarget(name: "HaloQuantizationTests", dependencies: ["HaloQuantization", "HaloTestSupport"]),
        .testTarget(name: "HaloAssignmentTests", dependencies: ["HaloAssignment", "HaloTestSupport"]),
        .testTarget(name: "HaloPartitionTests", dependencies: ["HaloPartition"]),
        .testTarget(name: "HaloTransportTests", dependencies: ["HaloTransport", "HaloTransportTesting"]),
        // End-to-end: runs the built `halo` executable, alone and under mpirun.
        .testTarget(name: "HaloCLITests", dependencies: [
            "HaloTransport", "HaloMPI", "HaloPartition", "HaloGraph", "HaloTensor", "HaloTraining", "HaloTensorBoardTesting",
            "HaloImportTesting", "HaloTestSupport",
        ]),
        .testTarget(name: "HaloTensorBoardTests", dependencies: ["HaloTensorBoard", "HaloTensorBoardTesting", "HaloTraining", "HaloNN"]),
        .testTarget(name: "HaloReportPageTests", dependencies: ["HaloReportPage", "HaloTraining", "HaloNN"]),
        .testTarget(name: "HaloImportTests", dependencies: ["HaloImport", "HaloImportTesting", "HaloGraph", "HaloTensor", "CZlib"]),
        .testTarget(name: "HaloTrainingTests", dependencies: [
            "HaloTraining", "HaloTransportTesting", "HaloGraph", "HaloNN", "HaloPartition", "HaloQuantization", "HaloTensor",
            "HaloTransport", "HaloTestSupport",
        ]),
    ],
    swiftLanguageModes: [.v6]
)
