import HaloTensor

/// A trainable tensor and its gradient.
///
/// A reference type because the layer that uses it, the optimiser that updates it and the gradient all-reduce
/// that sums it across ranks all act on the same tensor.
public final class Parameter {
    /// Human-readable name for reports and checkpoints, e.g. "conv1.weight".
    public let name: String
    public var value: Matrix
    public var gradient: Matrix

    public init(name: String, value: Matrix) {
        self.name = name
        self.value = value
        self.gradient = Matrix(rows: value.rows, cols: value.cols)
    }

    public var count: Int { value.count }

    public func zeroGradient() { gradient.zero() }
}

/// Glorot/Xavier uniform initialisation: `U(−a, a)`, `a = sqrt(6 / (fanIn + fanOut))`.
///
/// Element (i, j) of parameter `slot` of layer `layer` is drawn from the counter generator at that address, so
/// every rank builds bit-identical weights without communicating.
public func xavierUniform(rows: Int, cols: Int, random: CounterRandom, layer: LayerIndex, slot: Int) -> Matrix {
    let bound = (6 / Float(rows + cols)).squareRoot()
    var m = Matrix(rows: rows, cols: cols)
    m.storage.withUnsafeMutableBufferPointer { p in
        for i in 0..<rows {
            random.fillUniform(p.baseAddress! + i * cols, count: cols, .parameterInit,
                               UInt32(truncatingIfNeeded: layer.rawValue), UInt32(slot), UInt32(i))
            for j in 0..<cols { p[i * cols + j] = (2 * p[i * cols + j] - 1) * bound }
        }
    }
    return m
}
