import HaloGraph
import HaloNN
import HaloTensor
import XCTest
import HaloTestSupport

func randomMatrix(_ rows: Int, _ cols: Int, _ rng: inout TestRNG, range: ClosedRange<Float> = -1...1) -> Matrix {
    Matrix(rows: rows, cols: cols, storage: (0..<(rows * cols)).map { _ in rng.float(in: range) })
}

/// A random sparse feature matrix (sorted, duplicate-free rows; some rows empty).
func randomSparse(rows: Int, cols: Int, perRow: Int, _ rng: inout TestRNG) -> SparseMatrix {
    var triplets: [(row: Int, col: Int, value: Float)] = []
    for r in 0..<rows where r % 4 != 3 {
        var chosen = Set<Int>()
        let n = rng.int(1..<(perRow + 1))
        while chosen.count < min(n, cols) { chosen.insert(rng.int(0..<cols)) }
        for c in chosen { triplets.append((r, c, rng.float())) }
    }
    return SparseMatrix(rows: rows, cols: cols, triplets: triplets)
}

/// A small random directed graph given as a raw edge list that contains duplicate edges and self loops, plus an
/// isolated node (the last one).
func randomEdgeList(nodes: Int, edges: Int, _ rng: inout TestRNG) -> (sources: [Int32], destinations: [Int32]) {
    var s: [Int32] = [], d: [Int32] = []
    for _ in 0..<edges {
        s.append(Int32(rng.int(0..<(nodes - 1))))
        d.append(Int32(rng.int(0..<(nodes - 1))))
    }
    // Explicit duplicates and self loops.
    s += [0, 0, 1, 2, 2]
    d += [1, 1, 1, 2, 0]
    return (s, d)
}

func randomGraph(nodes: Int, edges: Int, _ rng: inout TestRNG) -> Graph {
    let (s, d) = randomEdgeList(nodes: nodes, edges: edges, &rng)
    return Graph(nodeCount: nodes, sources: s, destinations: d)
}

/// `Σ_ij output[i, j] · weights[i, j]` in Double: the scalar loss of the gradient checks.
func weightedSum(_ output: Matrix, _ weights: Matrix) -> Double {
    precondition(output.rows == weights.rows && output.cols == weights.cols, "weightedSum shapes differ")
    var s = 0.0
    for i in 0..<output.count { s += Double(output.storage[i]) * Double(weights.storage[i]) }
    return s
}

/// A Float tensor entry that a gradient check perturbs.
struct Probe {
    let name: String
    let get: () -> Float
    let set: (Float) -> Void
}

func probes(_ p: Parameter, indices: [Int]? = nil) -> [Probe] {
    (indices ?? Array(0..<p.count)).map { i in
        Probe(name: "\(p.name)[\(i)]", get: { p.value.storage[i] }, set: { p.value.storage[i] = $0 })
    }
}

/// A few spread-out entries of a parameter: first, last and some in between.
func sampledIndices(_ count: Int, _ samples: Int, _ rng: inout TestRNG) -> [Int] {
    guard count > samples else { return Array(0..<count) }
    var chosen: Set<Int> = [0, count - 1]
    while chosen.count < samples { chosen.insert(rng.int(0..<count)) }
    return chosen.sorted()
}

/// Central difference `(L(x+h) − L(x−h)) / (x₊ − x₋)`, with the Float-rounded perturbed values in the denominator.
func centralDifference(_ probe: Probe, step: Double, loss: () throws -> Double) rethrows -> Double {
    let original = probe.get()
    let plus = Float(Double(original) + step), minus = Float(Double(original) - step)
    probe.set(plus)
    let lp = try loss()
    probe.set(minus)
    let lm = try loss()
    probe.set(original)
    return (lp - lm) / (Double(plus) - Double(minus))
}

/// Whether two derivative estimates agree to `relative` of their size, or within `absolute`.
func agree(_ a: Double, _ b: Double, relative: Double, absolute: Double) -> Bool {
    abs(a - b) <= relative * max(abs(a), abs(b)) + absolute
}

/// Compares analytic derivatives against central differences for every probe.
func checkGradient(
    _ name: String, probes: [Probe], analytic: [Float], step: Double = 1e-2, relative: Double = 1e-2,
    absolute: Double = 1e-3, loss: () throws -> Double, file: StaticString = #filePath, line: UInt = #line
) rethrows {
    precondition(probes.count == analytic.count)
    for (probe, a) in zip(probes, analytic) {
        let numeric = try centralDifference(probe, step: step, loss: loss)
        XCTAssertTrue(agree(Double(a), numeric, relative: relative, absolute: absolute),
                      "\(name) \(probe.name): analytic \(a), numeric \(numeric)", file: file, line: line)
    }
}

/// Like `checkGradient` for piecewise-smooth losses (ReLU). An entry whose forward and backward one-sided
/// differences disagree has a kink within the step (possibly right at the point, where the central difference
/// averages the two slopes) and is skipped; at most a quarter of the entries may be skipped.
func checkGradientAvoidingKinks(
    _ name: String, probes: [Probe], analytic: [Float], step: Double, relative: Double = 1e-2,
    absolute: Double = 1e-3, loss: () throws -> Double, file: StaticString = #filePath, line: UInt = #line
) rethrows {
    precondition(probes.count == analytic.count)
    var skipped: [String] = []
    for (probe, a) in zip(probes, analytic) {
        let original = probe.get()
        let plus = Float(Double(original) + step), minus = Float(Double(original) - step)
        let l0 = try loss()
        probe.set(plus)
        let lp = try loss()
        probe.set(minus)
        let lm = try loss()
        probe.set(original)
        let forward = (lp - l0) / (Double(plus) - Double(original))
        let backward = (l0 - lm) / (Double(original) - Double(minus))
        let central = (lp - lm) / (Double(plus) - Double(minus))
        guard agree(forward, backward, relative: relative, absolute: absolute) else {
            skipped.append(probe.name)
            continue
        }
        XCTAssertTrue(agree(Double(a), central, relative: relative, absolute: absolute),
                      "\(name) \(probe.name): analytic \(a), numeric \(central) (one-sided \(forward), \(backward))",
                      file: file, line: line)
    }
    XCTAssertLessThanOrEqual(skipped.count * 4, probes.count, "\(name): too many entries near a kink: \(skipped)",
                             file: file, line: line)
}

let evalContext = StepContext(epoch: 0, training: false, random: CounterRandom(seed: 1), pool: .serial)
