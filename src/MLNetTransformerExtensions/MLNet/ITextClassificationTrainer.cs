using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// Trains an <see cref="ITextClassificationModel"/> from rows that <see cref="TextClassificationEstimator"/> has
/// read out of an ML.NET data view. The trainer carries its own settings (checkpoint, epochs, learning rate…).
/// </summary>
/// <remarks>
/// <see cref="Train"/> may be called many times on one trainer (cross-validation fits once per fold),
/// and each call must return a new classifier, which the caller then owns.
/// </remarks>
public interface ITextClassificationTrainer
{
    /// <summary>Trains a classifier.</summary>
    /// <param name="training">The training rows; labels are class indices 0..K-1, K = <c>classNames.Count</c>.</param>
    /// <param name="validation">Rows to validate on while training, with the same classes, or <see langword="null"/>.</param>
    /// <param name="classNames">
    /// The name of each class by index: the label's key values as text for multiclass tasks (all K of them,
    /// seen in the rows or not), <c>["False", "True"]</c> for binary ones.
    /// </param>
    /// <param name="context">Seed, cancellation and progress reporting for this run.</param>
    /// <returns>A classifier whose <see cref="ITextClassificationModel.ClassCount"/> is <c>classNames.Count</c>.</returns>
    ITextClassificationModel Train(LabeledTexts training, LabeledTexts? validation, IReadOnlyList<string> classNames, TextClassificationTrainingContext context);
}

/// <summary>What a trainer gets besides its rows: a seed, a cancellation token and a place to report progress.</summary>
public sealed class TextClassificationTrainingContext
{
    private readonly Action<string> _log;

    internal TextClassificationTrainingContext(int seed, CancellationToken cancellationToken, Action<string> log, IProgress<TrainingProgress>? progress,
        Action? afterReport = null)
    {
        Seed = seed;
        CancellationToken = cancellationToken;
        _log = log;
        Progress = new Reporter(log, progress, afterReport);
    }

    /// <summary>
    /// A seed for weight initialisation, shuffling and dropout. It is drawn from the ML.NET environment,
    /// so <c>new MLContext(seed: …)</c> makes training repeatable.
    /// </summary>
    public int Seed { get; }

    /// <summary>
    /// Cancelled when the caller stops the run (the options' token, or ML.NET cancelling the environment).
    /// Check it between steps and throw <see cref="OperationCanceledException"/>.
    /// </summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>
    /// Where to report progress (for example <c>FineTuner.Train(…, context.Progress, context.CancellationToken)</c>):
    /// every report goes to the options' progress handler, and the end of each epoch to <c>MLContext.Log</c>.
    /// </summary>
    public IProgress<TrainingProgress> Progress { get; }

    /// <summary>Writes a message to the ML.NET log (<c>MLContext.Log</c>).</summary>
    /// <param name="message">The message.</param>
    public void Log(string message) => _log(message);

    /// <summary>
    /// Reports synchronously, on the trainer's thread, so the log keeps the order of events; then runs
    /// <paramref name="afterReport"/> (the estimator checks there whether ML.NET cancelled the environment).
    /// </summary>
    private sealed class Reporter(Action<string> log, IProgress<TrainingProgress>? handler, Action? afterReport) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.Notice is { } notice)
            {
                log(notice);
            }

            if (value.IsEpochEnd)
            {
                log(Describe(value));
            }

            handler?.Report(value);
            afterReport?.Invoke();
        }

        private static string Describe(TrainingProgress p)
        {
            var line = FormattableString.Invariant($"epoch {p.Epoch}/{p.Epochs} done, step {p.Step}/{p.TotalSteps}, loss {p.Loss:0.0000}");
            if (p.ValidationAccuracy is { } accuracy)
            {
                line += FormattableString.Invariant($", validation accuracy {accuracy:0.0000}");
            }

            if (p.ValidationLogLoss is { } logLoss)
            {
                line += FormattableString.Invariant($", validation log-loss {logLoss:0.0000}");
            }

            return line;
        }
    }
}
