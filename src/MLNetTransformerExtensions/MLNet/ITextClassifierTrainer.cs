namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// Trains an <see cref="ITextClassifier"/> from rows that <see cref="TextClassificationEstimator"/> has
/// read out of an ML.NET data view. The trainer carries its own options (model, epochs, learning rate…).
/// </summary>
/// <remarks>
/// <see cref="Train"/> may be called many times on one trainer (cross-validation fits once per fold),
/// and each call must return a new classifier, which the caller then owns.
/// </remarks>
public interface ITextClassifierTrainer
{
    /// <summary>Trains a classifier.</summary>
    /// <param name="training">The training rows; labels are class indices 0..K-1 with K = <see cref="TextClassificationExamples.ClassCount"/>.</param>
    /// <param name="validation">Rows to validate on while training, with the same classes, or <see langword="null"/>.</param>
    /// <param name="context">Seed, cancellation and progress reporting for this run.</param>
    /// <returns>A classifier whose <see cref="ITextClassifier.ClassCount"/> is <c>training.ClassCount</c>.</returns>
    ITextClassifier Train(TextClassificationExamples training, TextClassificationExamples? validation, TextClassifierTrainingContext context);
}

/// <summary>Rows of a text classification task, read into memory: texts, optional second texts, class indices.</summary>
public sealed class TextClassificationExamples
{
    /// <summary>Creates a set of examples, checking that the lists agree.</summary>
    /// <param name="texts">The first (or only) text of each row; never <see langword="null"/> entries.</param>
    /// <param name="secondTexts">The second text of each row for text-pair tasks, or <see langword="null"/>.</param>
    /// <param name="labels">The class index of each row, in 0..<c>classNames.Count</c>-1.</param>
    /// <param name="classNames">The name of each class, by class index.</param>
    public TextClassificationExamples(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts, IReadOnlyList<int> labels, IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classNames);
        if (labels.Count != texts.Count)
        {
            throw new ArgumentException($"There are {texts.Count} texts but {labels.Count} labels; each row needs one of each.", nameof(labels));
        }

        if (secondTexts is not null && secondTexts.Count != texts.Count)
        {
            throw new ArgumentException($"There are {texts.Count} texts but {secondTexts.Count} second texts; each row needs one of each.", nameof(secondTexts));
        }

        for (var row = 0; row < labels.Count; row++)
        {
            if ((uint)labels[row] >= (uint)classNames.Count)
            {
                throw new ArgumentException($"Row {row} has class index {labels[row]}, outside 0..{classNames.Count - 1}.", nameof(labels));
            }
        }

        Texts = texts;
        SecondTexts = secondTexts;
        Labels = labels;
        ClassNames = classNames;
    }

    /// <summary>The first (or only) text of each row.</summary>
    public IReadOnlyList<string> Texts { get; }

    /// <summary>The second text of each row for text-pair tasks; <see langword="null"/> for single-text tasks.</summary>
    public IReadOnlyList<string>? SecondTexts { get; }

    /// <summary>The class index of each row, in 0..<see cref="ClassCount"/>-1.</summary>
    public IReadOnlyList<int> Labels { get; }

    /// <summary>
    /// The name of each class by index: the label's key values (as text) for multiclass tasks,
    /// <c>["False", "True"]</c> for binary ones.
    /// </summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The number of rows.</summary>
    public int Count => Texts.Count;

    /// <summary>The number of classes K (the label key type's count, not only the classes seen).</summary>
    public int ClassCount => ClassNames.Count;
}

/// <summary>One progress report from a trainer.</summary>
/// <param name="Epoch">The current epoch, counting from 1.</param>
/// <param name="EpochCount">The number of epochs planned.</param>
/// <param name="Step">Optimizer steps done so far in the whole run.</param>
/// <param name="StepCount">Optimizer steps planned for the whole run.</param>
/// <param name="TrainingLoss">The recent training loss, if known.</param>
/// <param name="ValidationAccuracy">Accuracy on the validation rows, when just measured.</param>
public sealed record TextClassifierTrainingProgress(
    int Epoch, int EpochCount, long Step, long StepCount, double? TrainingLoss = null, double? ValidationAccuracy = null)
{
    /// <summary>A one-line summary, as written to the ML.NET log.</summary>
    public override string ToString()
    {
        var line = FormattableString.Invariant($"epoch {Epoch}/{EpochCount}, step {Step}/{StepCount}");
        if (TrainingLoss is { } loss)
        {
            line += FormattableString.Invariant($", loss {loss:0.0000}");
        }

        if (ValidationAccuracy is { } accuracy)
        {
            line += FormattableString.Invariant($", validation accuracy {accuracy:0.0000}");
        }

        return line;
    }
}

/// <summary>What a trainer gets besides its rows: a seed, a cancellation token and a place to report progress.</summary>
public sealed class TextClassifierTrainingContext
{
    private readonly Action<string> _log;
    private readonly IProgress<TextClassifierTrainingProgress>? _progress;

    internal TextClassifierTrainingContext(int seed, CancellationToken cancellationToken, Action<string> log, IProgress<TextClassifierTrainingProgress>? progress)
    {
        Seed = seed;
        CancellationToken = cancellationToken;
        _log = log;
        _progress = progress;
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

    /// <summary>Reports progress: to the ML.NET log (<c>MLContext.Log</c>) and to the options' progress handler.</summary>
    /// <param name="progress">Where training is.</param>
    public void ReportProgress(TextClassifierTrainingProgress progress)
    {
        ArgumentNullException.ThrowIfNull(progress);
        _log(progress.ToString());
        _progress?.Report(progress);
    }

    /// <summary>Writes a message to the ML.NET log (<c>MLContext.Log</c>).</summary>
    /// <param name="message">The message.</param>
    public void Log(string message) => _log(message);
}
