import Foundation
import XCTest

/// `halo train --config FILE` and `--recipe NAME`: options from YAML or from a report, the command line winning,
/// and files that cannot be used refused naming the file and the option.
final class TrainConfigFileCommandTests: CommandTestCase {
    static let small = "synthetic:nodes=500,classes=3,features=8,degree=6,seed=5"

    private func report(_ json: URL) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
    }

    private func write(_ text: String, _ name: String) throws -> URL {
        let url = scratch.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url
    }

    func testOptionsFromYAMLAndTheCommandLineWins() throws {
        let file = try write("""
            dataset: \(Self.small)
            hidden: 24
            epochs: 5
            input_dropout: 0.25
            precompute-layer0: false
            normalize-features: true
            method: adaqp
            parts: 2
            quiet: true
            """, "run.yaml")
        let json = scratch.appendingPathComponent("run.json")
        let outcome = try run(try halo(), ["train", "--config", file.path, "--epochs", "3", "--json-out", json.path], timeout: 120)
        XCTAssertEqual(outcome.status, 0, "\(outcome)")
        let config = try XCTUnwrap(try report(json)["config"] as? [String: Any])
        let model = try XCTUnwrap(config["model"] as? [String: Any])
        XCTAssertEqual(model["hidden_width"] as? Int, 24)
        XCTAssertEqual(model["input_dropout"] as? Double, 0.25)
        XCTAssertEqual(config["epochs"] as? Int, 3, "the command line overrides the file")
        XCTAssertEqual(config["method"] as? String, "adaqp")
        XCTAssertEqual(config["normalize_features"] as? Bool, true)
        XCTAssertEqual((config["quantization"] as? [String: Any])?["precompute_first_layer"] as? Bool, false)
        XCTAssertEqual((try report(json)["partitioning"] as? [String: Any])?["parts"] as? Int, 2)
    }

    /// A YAML file holding a flag-driven run's options trains exactly that run.
    func testAYAMLFileReproducesAFlagDrivenRun() throws {
        let flags = ["--dataset", Self.small, "--model", "sage", "--layers", "3", "--hidden", "20", "--dropout", "0.3",
                     "--lr", "0.02", "--weight-decay", "0.0005", "--epochs", "5", "--seed", "4", "--parts", "2",
                     "--method", "adaqp", "--assign", "uniform:4", "--no-precompute-layer0"]
        let byFlags = scratch.appendingPathComponent("flags.json")
        let first = try run(try halo(), ["train"] + flags + ["--quiet", "--json-out", byFlags.path], timeout: 120)
        XCTAssertEqual(first.status, 0, "\(first)")
        let file = try write("""
            dataset: \(Self.small)
            model: sage
            layers: 3
            hidden: 20
            dropout: 0.3
            lr: 0.02
            weight_decay: 5e-4
            epochs: 5
            seed: 4
            parts: 2
            method: adaqp
            assign: uniform:4
            precompute-layer0: false
            """, "same.yaml")
        let byFile = scratch.appendingPathComponent("file.json")
        let second = try run(try halo(), ["train", "--config", file.path, "--quiet", "--json-out", byFile.path], timeout: 120)
        XCTAssertEqual(second.status, 0, "\(second)")
        let (a, b) = (try report(byFlags), try report(byFile))
        XCTAssertEqual(a["config"] as? NSDictionary, b["config"] as? NSDictionary)
        XCTAssertEqual((a["epochs"] as? [[String: Any]])?.map { $0["loss"] as? Double },
                       (b["epochs"] as? [[String: Any]])?.map { $0["loss"] as? Double })
    }

    /// A report fed back as --config repeats the run: same settings, same losses.
    func testAReportRepeatsItsRun() throws {
        let first = scratch.appendingPathComponent("first.json")
        let again = scratch.appendingPathComponent("again.json")
        let outcome = try run(try halo(), ["train", "--dataset", Self.small, "--recipe", "kipf-gcn", "--epochs", "6",
                                           "--parts", "2", "--method", "pipegcn", "--grad-compression", "bf16",
                                           "--no-overlap-allreduce", "--weight-gradient-pieces", "2", "--quiet",
                                           "--json-out", first.path], timeout: 120)
        XCTAssertEqual(outcome.status, 0, "\(outcome)")
        let repeated = try run(try halo(), ["train", "--config", first.path, "--quiet", "--json-out", again.path], timeout: 120)
        XCTAssertEqual(repeated.status, 0, "\(repeated)")
        let (a, b) = (try report(first), try report(again))
        XCTAssertEqual(a["config"] as? NSDictionary, b["config"] as? NSDictionary)
        XCTAssertEqual((a["epochs"] as? [[String: Any]])?.map { $0["loss"] as? Double },
                       (b["epochs"] as? [[String: Any]])?.map { $0["loss"] as? Double })
        let model = try XCTUnwrap((a["config"] as? [String: Any])?["model"] as? [String: Any])
        XCTAssertEqual(model["hidden_width"] as? Int, 16, "kipf-gcn's width")
        let config = try XCTUnwrap(b["config"] as? [String: Any])
        XCTAssertEqual(config["gradient_compression"] as? String, "bf16")
        XCTAssertEqual(config["overlaps_gradient_reduction"] as? Bool, false)
        XCTAssertEqual(config["weight_gradient_pieces"] as? Int, 2)
    }

    func testFilesThatCannotBeUsedAreRefusedByName() throws {
        let cases: [(String, String)] = [
            ("hidden: 32\nbogus: 1\n", "unknown option `bogus`"),
            ("hidden: [1, 2]\n", "option `hidden`: expected a single value, found a list"),
            ("quiet: 3\n", "option `quiet`: expected true or false"),
            ("- hidden\n", "expected a mapping of options"),
            ("a: [\n", "is not valid YAML or JSON"),
            ("config: x.yaml\n", "a file cannot name another file"),
            ("{\"config\": {\"optimizer\": {\"learning_rate\": 0.01, \"beta1\": 0.5}}}", "`config.optimizer.beta1` is 0.5"),
        ]
        for (i, (text, message)) in cases.enumerated() {
            let file = try write(text, "bad-\(i).yaml")
            let outcome = try run(try halo(), ["train", "--dataset", Self.small, "--config", file.path], timeout: 60)
            XCTAssertNotEqual(outcome.status, 0, "\(text)")
            XCTAssertTrue(outcome.stderr.contains(file.path) && outcome.stderr.contains(message), "\(text): \(outcome)")
        }
        let missing = try run(try halo(), ["train", "--config", scratch.appendingPathComponent("none.yaml").path], timeout: 60)
        XCTAssertTrue(missing.stderr.contains("cannot be read"), "\(missing)")
        let recipe = try run(try halo(), ["train", "--recipe", "nope"], timeout: 60)
        XCTAssertTrue(recipe.stderr.contains("no such recipe; the recipes are: kipf-gcn"), "\(recipe)")
    }

    /// Every option `halo train --help` lists can be set from a file: a file naming each one is accepted.
    func testEveryOptionOfTrainCanBeSetFromAFile() throws {
        let help = try run(try halo(), ["train", "--help"], timeout: 60)
        // The option list's lines start with the flag (discussions may quote other programs' flags, e.g. mpirun's).
        let optionLines = help.stdout.split(separator: "\n").filter { $0.drop { $0 == " " }.hasPrefix("--") }
        let names = Set(optionLines.compactMap { $0.firstMatch(of: /--(?:\[no-\])?([a-z0-9][a-z0-9-]*)/).map { String($0.output.1) } })
            .subtracting(["help", "config", "recipe", "no-bypass", "no-adaptive-bits", "no-precompute-layer0", "no-overlap-allreduce"])
        XCTAssertGreaterThan(names.count, 30)
        // A value of the right kind for each: the run is then refused by validation or checks, never by the file.
        let text = names.sorted().map { "\($0): " + (["quiet", "normalize-features", "bypass", "adaptive-bits", "precompute-layer0", "recalibrate", "overlap-allreduce"].contains($0) ? "true" : "\"x\"") }
        let file = try write(text.joined(separator: "\n"), "all.yaml")
        let outcome = try run(try halo(), ["train", "--config", file.path], timeout: 60)
        XCTAssertFalse(outcome.stderr.contains("unknown option"), "\(outcome)")
        XCTAssertFalse(outcome.stderr.contains("expected true or false"), "\(outcome)")
    }
}
