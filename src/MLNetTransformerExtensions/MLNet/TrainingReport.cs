using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// A self-contained HTML report of a classifier (one file, inline SVG, no scripts, nothing loaded from the network,
/// readable on a phone): training curves from the progress events, and for each evaluated model a confusion-matrix
/// heatmap, per-class precision/recall/F1 and a reliability diagram; the first model's most confidently wrong examples
/// are shown with their token attributions highlighted.
/// </summary>
/// <remarks>
/// The report is an <see cref="IProgress{T}"/> of <see cref="TrainingProgress"/>: pass it (or call
/// <see cref="Report"/> from your own progress handler) to record the loss, learning rate and validation metrics of
/// each step and epoch. It is safe to report from several threads.
/// </remarks>
/// <example>
/// <code>
/// var report = new TrainingReport("Sentiment, MiniLM");
/// var options = new EncoderClassifierOptions { Progress = report, ... };
/// var model = mlContext.MulticlassClassification.Trainers.EncoderClassifier(options).Fit(train);
/// report.AddEvaluation("MiniLM", classifier, testTexts, testLabels);
/// report.Save("report.html");
/// </code>
/// </example>
public sealed class TrainingReport : IProgress<TrainingProgress>
{
    /// <summary>How many of the most confidently wrong examples are explained by default.</summary>
    public const int DefaultExplainedMistakes = 5;

    private readonly object _lock = new();
    private readonly List<TrainingProgress> _progress = [];
    private readonly List<ReportedEvaluation> _evaluations = [];

    /// <summary>Creates an empty report.</summary>
    /// <param name="title">The report's heading, e.g. the data set and model.</param>
    public TrainingReport(string title)
    {
        ArgumentNullException.ThrowIfNull(title);
        Title = title;
    }

    /// <summary>The report's heading.</summary>
    public string Title { get; }

    /// <summary>Records one progress event (a training step or the end of an epoch).</summary>
    /// <param name="value">The event.</param>
    public void Report(TrainingProgress value)
    {
        ArgumentNullException.ThrowIfNull(value);
        lock (_lock)
        {
            _progress.Add(value);
        }
    }

    /// <summary>
    /// Adds a model's predictions on labelled rows (any classifier: a classic ML.NET pipeline as a baseline, for
    /// example). The first model added is the report's main one.
    /// </summary>
    /// <param name="modelName">The model's name in the report.</param>
    /// <param name="classNames">Class names, in the probabilities' order.</param>
    /// <param name="texts">The rows' texts.</param>
    /// <param name="labels">The rows' true classes, as indices into <paramref name="classNames"/>.</param>
    /// <param name="probabilities">Each row's class probabilities.</param>
    /// <exception cref="ArgumentException">The lists differ in length, a label is out of range, or a probability row has the wrong length.</exception>
    public void AddEvaluation(string modelName, IReadOnlyList<string> classNames, IReadOnlyList<string> texts, IReadOnlyList<int> labels, IReadOnlyList<float[]> probabilities)
    {
        ArgumentNullException.ThrowIfNull(modelName);
        ArgumentNullException.ThrowIfNull(classNames);
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(probabilities);
        if (texts.Count != labels.Count || probabilities.Count != labels.Count)
        {
            throw new ArgumentException($"There are {texts.Count} texts, {labels.Count} labels and {probabilities.Count} probability rows; give one of each per row.", nameof(probabilities));
        }

        ReportMetrics.CheckRows(classNames.Count, labels, probabilities);
        lock (_lock)
        {
            _evaluations.Add(new ReportedEvaluation(modelName, [.. classNames], [.. texts], [.. labels], [.. probabilities], []));
        }
    }

    /// <summary>
    /// Scores labelled rows with a fitted transformer classifier, adds its evaluation, and explains its most
    /// confidently wrong rows with token attributions (integrated gradients).
    /// </summary>
    /// <param name="modelName">The model's name in the report.</param>
    /// <param name="model">The fitted classifier.</param>
    /// <param name="texts">The rows' texts.</param>
    /// <param name="labels">The rows' true classes, by name (one of the model's class names).</param>
    /// <param name="secondTexts">The rows' second texts for a text-pair model; null otherwise.</param>
    /// <param name="explainedMistakes">How many of the most confidently wrong rows to explain.</param>
    /// <exception cref="ArgumentException">A label is not one of the model's classes, or the lists differ in length.</exception>
    public void AddEvaluation(
        string modelName, TextClassificationTransformer model, IReadOnlyList<string> texts, IReadOnlyList<string> labels,
        IReadOnlyList<string>? secondTexts = null, int explainedMistakes = DefaultExplainedMistakes)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfNegative(explainedMistakes);
        var classNames = model.ClassNames;
        var indices = new int[labels.Count];
        for (var i = 0; i < labels.Count; i++)
        {
            indices[i] = classNames.ToList().IndexOf(labels[i]);
            if (indices[i] < 0)
            {
                throw new ArgumentException($"Row {i} has the label '{labels[i]}', which is not one of the model's classes ({string.Join(", ", classNames)}).", nameof(labels));
            }
        }

        var probabilities = new List<float[]>(texts.Count);
        for (var start = 0; start < texts.Count; start += model.BatchSize)
        {
            var count = Math.Min(model.BatchSize, texts.Count - start);
            probabilities.AddRange(model.Predict([.. texts.Skip(start).Take(count)], secondTexts is null ? null : [.. secondTexts.Skip(start).Take(count)]));
        }

        AddEvaluation(modelName, classNames, texts, indices, probabilities);
        // Classifiers without token attributions (SetFit's head, a chat model) still get every chart, not the highlights.
        var mistakes = model.Classifier is IExplainableTextClassificationModel
            ? ReportMetrics.ConfidentMistakes(indices, probabilities, explainedMistakes)
            : [];
        var explained = new List<ExplainedMistake>();
        foreach (var row in mistakes)
        {
            var predicted = ReportMetrics.ArgMax(probabilities[row]);
            var why = model.Explain([texts[row]], secondTexts is null ? null : [secondTexts[row]], new TokenAttributionOptions { Label = classNames[predicted] })[0];
            explained.Add(new ExplainedMistake(row, why));
        }

        lock (_lock)
        {
            var last = _evaluations[^1];
            _evaluations[^1] = last with { Mistakes = explained };
        }
    }

    /// <summary>The report as one HTML document.</summary>
    /// <returns>The HTML.</returns>
    public string ToHtml()
    {
        lock (_lock)
        {
            return TrainingReportHtml.Render(Title, [.. _progress.OrderBy(p => p.Step).ThenBy(p => p.IsEpochEnd)], _evaluations);
        }
    }

    /// <summary>Writes the report to an HTML file.</summary>
    /// <param name="path">The file (created or overwritten).</param>
    public void Save(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        File.WriteAllText(path, ToHtml(), new System.Text.UTF8Encoding(false));
    }
}

/// <summary>One model's predictions on labelled rows, and its explained mistakes.</summary>
internal sealed record ReportedEvaluation(
    string ModelName, string[] ClassNames, string[] Texts, int[] Labels, float[][] Probabilities, IReadOnlyList<ExplainedMistake> Mistakes);

/// <summary>A confidently wrong row and the attributions of the class it wrongly predicted.</summary>
internal sealed record ExplainedMistake(int Row, TokenAttribution Attribution);

/// <summary>The numbers the report shows, computed from labels and probabilities.</summary>
internal static class ReportMetrics
{
    /// <summary>Throws unless every row has a class index in range and one probability per class.</summary>
    public static void CheckRows(int classes, IReadOnlyList<int> labels, IReadOnlyList<float[]> probabilities)
    {
        if (probabilities.Count != labels.Count)
        {
            throw new ArgumentException($"There are {labels.Count} labels and {probabilities.Count} probability rows; give one of each per row.", nameof(probabilities));
        }

        for (var i = 0; i < labels.Count; i++)
        {
            if (labels[i] < 0 || labels[i] >= classes)
            {
                throw new ArgumentException($"Row {i} has class index {labels[i]}, outside the {classes} classes.", nameof(labels));
            }

            if (probabilities[i]?.Length != classes)
            {
                throw new ArgumentException($"Row {i} has {probabilities[i]?.Length ?? 0} probabilities for {classes} classes.", nameof(probabilities));
            }
        }
    }

    public static int ArgMax(float[] values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }

    /// <summary>Counts [truth, predicted].</summary>
    public static int[,] Confusion(ReportedEvaluation e)
    {
        var k = e.ClassNames.Length;
        var counts = new int[k, k];
        for (var i = 0; i < e.Labels.Length; i++)
        {
            counts[e.Labels[i], ArgMax(e.Probabilities[i])]++;
        }

        return counts;
    }

    /// <summary>Per-class precision, recall and F1 (0 where undefined), from a confusion matrix.</summary>
    public static (double Precision, double Recall, double F1)[] PerClass(int[,] confusion)
    {
        var k = confusion.GetLength(0);
        var result = new (double, double, double)[k];
        for (var c = 0; c < k; c++)
        {
            double predicted = 0, actual = 0;
            for (var o = 0; o < k; o++)
            {
                predicted += confusion[o, c];
                actual += confusion[c, o];
            }

            var precision = predicted == 0 ? 0 : confusion[c, c] / predicted;
            var recall = actual == 0 ? 0 : confusion[c, c] / actual;
            result[c] = (precision, recall, precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall));
        }

        return result;
    }

    public static double Accuracy(ReportedEvaluation e) =>
        e.Labels.Length == 0 ? 0 : e.Labels.Where((label, i) => ArgMax(e.Probabilities[i]) == label).Count() / (double)e.Labels.Length;

    /// <summary>Mean negative log-probability of the true class (probabilities floored at 1e-15, as ML.NET's evaluator).</summary>
    public static double LogLoss(ReportedEvaluation e) =>
        e.Labels.Length == 0 ? 0 : e.Labels.Select((label, i) => -Math.Log(Math.Max(1e-15, e.Probabilities[i][label]))).Average();

    /// <summary>
    /// The reliability diagram's bins: rows grouped by their top probability into <paramref name="bins"/> equal-width
    /// bins, each with its row count, mean confidence and accuracy; and the expected calibration error (the
    /// count-weighted mean gap between confidence and accuracy).
    /// </summary>
    public static ((int Count, double Confidence, double Accuracy)[] Bins, double ExpectedCalibrationError) Reliability(ReportedEvaluation e, int bins = 10)
    {
        var count = new int[bins];
        var confidence = new double[bins];
        var correct = new double[bins];
        for (var i = 0; i < e.Labels.Length; i++)
        {
            var predicted = ArgMax(e.Probabilities[i]);
            double p = e.Probabilities[i][predicted];
            var bin = Math.Clamp((int)(p * bins), 0, bins - 1);
            count[bin]++;
            confidence[bin] += p;
            correct[bin] += predicted == e.Labels[i] ? 1 : 0;
        }

        var result = new (int, double, double)[bins];
        double error = 0;
        for (var b = 0; b < bins; b++)
        {
            result[b] = count[b] == 0 ? (0, 0, 0) : (count[b], confidence[b] / count[b], correct[b] / count[b]);
            error += count[b] == 0 ? 0 : count[b] * Math.Abs((confidence[b] - correct[b]) / count[b]);
        }

        return (result, e.Labels.Length == 0 ? 0 : error / e.Labels.Length);
    }

    /// <summary>The wrongly predicted rows with the highest predicted probability, most confident first.</summary>
    public static int[] ConfidentMistakes(IReadOnlyList<int> labels, IReadOnlyList<float[]> probabilities, int count) =>
        [.. Enumerable.Range(0, labels.Count)
            .Where(i => ArgMax(probabilities[i]) != labels[i])
            .OrderByDescending(i => probabilities[i].Max())
            .ThenBy(i => i)
            .Take(count)];
}
