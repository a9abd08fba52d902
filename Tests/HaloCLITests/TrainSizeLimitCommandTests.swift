import Foundation
import XCTest

/// Issue 12, defect 1: sizes that cannot be trained are refused within a second, before anything of their size is
/// allocated (they used to end in SIGABRT "failed to allocate …" or in the kernel's OOM killer).
final class TrainSizeLimitCommandTests: CommandTestCase {
    static let dataset = "synthetic:nodes=300,classes=3,features=8,degree=6,seed=3"

    private func assertRefused(_ arguments: [String], saying message: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let outcome = try run(try halo(), ["train", "--epochs", "1", "--threads", "1", "--quiet"] + arguments, timeout: 30)
        XCTAssertFalse(outcome.timedOut, "\(arguments): \(outcome)", file: file, line: line)
        XCTAssertNotEqual(outcome.status, 0, "\(arguments): \(outcome)", file: file, line: line)
        XCTAssertLessThan(outcome.seconds, 10, "\(arguments): \(outcome)", file: file, line: line)
        XCTAssertTrue(outcome.stderr.contains(message), "\(arguments): \(outcome)", file: file, line: line)
        XCTAssertFalse(outcome.stdout.contains("best val"), "\(arguments) trained: \(outcome)", file: file, line: line)
    }

    func testOptionsBeyondTheirBoundsAreRefused() throws {
        try assertRefused(["--dataset", Self.dataset, "--hidden", "100000000"], saying: "--hidden must be in 1...65536, got 100000000")
        try assertRefused(["--dataset", Self.dataset, "--layers", "100000"], saying: "--layers must be in 1...64, got 100000")
    }

    /// Negative numbers reach validation instead of being taken for flags ("Missing value for '--epochs'").
    func testNegativeNumbersGetTheirOwnMessage() throws {
        try assertRefused(["--dataset", Self.dataset, "--epochs", "-1"], saying: "--epochs must be at least 1, got -1")
        try assertRefused(["--dataset", Self.dataset, "--hidden", "-5"], saying: "--hidden must be in 1...65536, got -5")
        try assertRefused(["--dataset", Self.dataset, "--lr", "-0.5"], saying: "--lr must be positive, got -0.5")
    }

    /// Within the bounds, but 7 weights of 65536 × 65536 with gradients and Adam moments need ~400 GiB.
    func testRunThatCannotFitInMemoryIsRefusedBeforeItStarts() throws {
        try assertRefused(["--dataset", Self.dataset, "--hidden", "65536", "--layers", "8"],
                          saying: "this run needs about ")
        try assertRefused(["--dataset", Self.dataset, "--hidden", "65536", "--layers", "8", "--parts", "2"],
                          saying: "GiB of memory, this machine has ")
    }

    /// --memory-budget: a run that fits the machine but not the budget is refused with the estimate; a budget above
    /// the estimate trains; a budget that is not a positive number is refused by the option's check.
    func testMemoryBudgetRefusesWhatExceedsIt() throws {
        try assertRefused(["--dataset", Self.dataset, "--memory-budget", "0.001"],
                          saying: "MiB of memory, the memory budget leaves 1.0 MiB for it")
        try assertRefused(["--dataset", Self.dataset, "--memory-budget", "0"], saying: "--memory-budget must be positive, got 0.0")
        try assertRefused(["--dataset", Self.dataset, "--memory-budget", "nan"], saying: "--memory-budget must be a finite number")
        let trained = try run(try halo(), ["train", "--dataset", Self.dataset, "--epochs", "1", "--threads", "1", "--quiet",
                                           "--memory-budget", "0.5"], timeout: 60)
        XCTAssertEqual(trained.status, 0, "\(trained)")
        XCTAssertTrue(trained.stdout.contains("best val"), "\(trained)")
    }

    /// --column-blocks: a positive count or auto; quantized and pipelined methods cannot cut their messages.
    func testColumnBlocksAreCheckedBeforeTraining() throws {
        try assertRefused(["--dataset", Self.dataset, "--column-blocks", "0"], saying: "The value '0' is invalid for '--column-blocks")
        try assertRefused(["--dataset", Self.dataset, "--column-blocks", "some"], saying: "The value 'some' is invalid for '--column-blocks")
        try assertRefused(["--dataset", Self.dataset, "--method", "adaqp", "--parts", "2", "--column-blocks", "2"],
                          saying: "--column-blocks 2 needs a method that sends full-precision rows within the layer (vanilla, adaqp-p); adaqp quantizes or caches whole rows")
        try assertRefused(["--dataset", Self.dataset, "--method", "pipegcn", "--parts", "2", "--column-blocks", "4"],
                          saying: "pipegcn quantizes or caches whole rows")
        for choice in ["auto", "1", "3"] {
            let trained = try run(try halo(), ["train", "--dataset", Self.dataset, "--epochs", "1", "--threads", "1", "--quiet",
                                               "--column-blocks", choice], timeout: 60)
            XCTAssertEqual(trained.status, 0, "\(choice): \(trained)")
        }
    }

    /// A billion nodes of 1000 features (~3.7 TiB of features alone) is refused from the spec, before generating:
    /// generating it would take far longer than the time allowed.
    func testHugeSyntheticSpecIsRefusedBeforeGenerating() throws {
        try assertRefused(["--dataset", "synthetic:nodes=1000000000,features=1000,classes=3"], saying: "input features 3725 GiB")
    }

    /// A dataset directory declaring 2^31 − 1 classes (labels all in range, so the reader accepts it) is refused by
    /// the memory estimate, naming the output layer's weight, instead of crashing in the allocator.
    func testHugeDeclaredClassCountIsRefused() throws {
        let dir = scratch.appendingPathComponent("many-classes")
        let generated = try run(try halo(), ["generate", "--dataset", Self.dataset, "--out", dir.path], timeout: 30)
        XCTAssertEqual(generated.status, 0, "\(generated)")
        let metaURL = dir.appendingPathComponent("meta.json")
        var meta = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: metaURL)) as? [String: Any])
        meta["num_classes"] = 2_147_483_647
        try JSONSerialization.data(withJSONObject: meta).write(to: metaURL)
        try assertRefused(["--dataset", dir.path], saying: "(largest weight 256 × 2147483647, hidden × classes)")
    }
}
