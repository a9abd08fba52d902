/// Training produced a value that is not a finite number (a learning rate, weight decay or input feature too large
/// for Float), so every later epoch would only compute NaN. Thrown by every rank at the same step: it is decided
/// on the all-reduced loss and gradients, which all ranks hold identically, so no rank waits for one that stopped.
public struct TrainingDiverged: Error, CustomStringConvertible, Sendable {
    /// What was found not finite.
    public enum Cause: Sendable {
        /// The global training loss of the step.
        case loss(Double)
        /// The all-reduced gradient of a parameter (named as in the model, e.g. "conv1.weight").
        case gradient(parameter: String, value: Float)
    }

    /// The epoch whose step diverged, counted from 0 as in the report's `epochs` (the progress line counts from 1).
    /// The epochs before it completed with finite values; the parameters were not updated with this step.
    public var epoch: Int
    /// The run's number of epochs, for the message.
    public var epochCount: Int
    public var cause: Cause

    public init(epoch: Int, epochCount: Int, cause: Cause) {
        self.epoch = epoch
        self.epochCount = epochCount
        self.cause = cause
    }

    public var description: String {
        let what = switch cause {
        case .loss(let value): "the training loss is \(value)"
        case .gradient(let parameter, let value): "the gradient of \(parameter) holds \(value) (the loss is finite)"
        }
        return "training diverged at epoch \(epoch + 1)/\(epochCount): \(what); "
            + "a smaller learning rate or weight decay, or features of smaller magnitude, may help"
    }
}
