import HaloTensor

/// A fully connected layer `y = x·W + b` (row-wise, no graph).
public final class Linear {
    public let weight: Parameter
    public let bias: Parameter
    private var input: LayerInput?

    public init(inputWidth: Int, outputWidth: Int, name: String, random: CounterRandom, layer: LayerIndex) {
        weight = Parameter(name: name + ".weight",
                           value: xavierUniform(rows: inputWidth, cols: outputWidth, random: random, layer: layer, slot: 0))
        bias = Parameter(name: name + ".bias", value: Matrix(rows: 1, cols: outputWidth))
    }

    public var parameters: [Parameter] { [weight, bias] }

    public func forward(_ x: LayerInput, pool: ComputePool) -> Matrix {
        input = x
        var out = Matrix(rows: x.rows, cols: weight.value.cols)
        x.multiply(weight.value, into: &out, accumulate: false, pool: pool)
        addRowVector(bias.value.storage, to: &out, pool: pool)
        return out
    }

    /// Accumulates parameter gradients; returns `dL/dx` when asked (never for sparse inputs).
    public func backward(_ gradient: Matrix, needInputGradient: Bool, pool: ComputePool) -> Matrix? {
        guard let input else { preconditionFailure("Linear.backward before forward") }
        input.accumulateTransposedProduct(gradient, into: &weight.gradient, pool: pool)
        let db = columnSums(gradient)
        for j in 0..<db.count { bias.gradient.storage[j] += db[j] }
        guard needInputGradient else { return nil }
        return matmul(gradient, weight.value, transposeB: true, pool: pool)
    }
}
