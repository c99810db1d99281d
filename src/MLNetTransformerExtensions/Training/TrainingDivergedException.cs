using System.Globalization;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// Training diverged: the loss or the gradient norm became NaN or infinite, or a weight did. Training stops at that
/// step and keeps nothing: no model is returned, and no model file or export is written. The usual cause is a
/// learning rate far too high; the message names the step, the epoch and the rate, and suggests a lower one.
/// </summary>
/// <remarks>
/// An <see cref="InvalidOperationException"/>, so code that already handles a failed <c>Fit</c> handles this too.
/// </remarks>
public sealed class TrainingDivergedException : InvalidOperationException
{
    internal TrainingDivergedException(string quantity, double value, int step, int totalSteps, int epoch, double learningRate)
        : base(Describe(quantity, value, step, totalSteps, epoch, learningRate))
    {
        Step = step;
        Epoch = epoch;
    }

    /// <summary>The optimizer step (1-based) at which training diverged.</summary>
    public int Step { get; }

    /// <summary>The epoch (1-based) at which training diverged.</summary>
    public int Epoch { get; }

    private static string Describe(string quantity, double value, int step, int totalSteps, int epoch, double learningRate) =>
        string.Create(CultureInfo.InvariantCulture,
            $"Training diverged at step {step} of {totalSteps} (epoch {epoch}): the {quantity} is {value}, at a learning rate of {learningRate:0.###E+0}. " +
            $"Nothing was kept. Train again with a lower LearningRate (try {learningRate / 10:0.###E+0}, a tenth).");
}
