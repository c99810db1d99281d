using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLNetTransformerExtensions.Diagnostics;
using MLNetTransformerExtensions.MLNet.Internal;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// An ML.NET trainer for text classifiers: <see cref="Fit"/> reads the text and label columns, hands the
/// rows to an <see cref="ITextClassificationTrainer"/>, and wraps the classifier it returns in a
/// <see cref="TextClassificationTransformer"/>. Catalog extension methods create it.
/// </summary>
/// <remarks>
/// <para><b>Input and output columns</b></para>
/// <list type="table">
/// <listheader><term>Column</term><description>Type</description></listheader>
/// <item><term>text (and optional second text)</term><description><see cref="string"/>; missing or empty texts are classified as an empty string</description></item>
/// <item><term>label, multiclass</term><description><c>Key&lt;UInt32, K&gt;</c>, K ≥ 2 (from <c>MapValueToKey</c>); a missing key (0) in a training row is an error</description></item>
/// <item><term>label, binary</term><description><see cref="bool"/></description></item>
/// <item><term>Score, multiclass</term><description><c>Vector&lt;Single, K&gt;</c>: class probabilities in key order, annotated with the class names</description></item>
/// <item><term>PredictedLabel, multiclass</term><description>the label's key type, with its key values, so <c>MapKeyToValue</c> restores the class</description></item>
/// <item><term>Score, binary</term><description><see cref="float"/>: log-odds of <see langword="true"/> (positive predicts <see langword="true"/>)</description></item>
/// <item><term>Probability, binary</term><description><see cref="float"/>: probability of <see langword="true"/></description></item>
/// <item><term>PredictedLabel, binary</term><description><see cref="bool"/></description></item>
/// </list>
/// <para>
/// The number of classes K is the label key's count, not the number of classes seen; the training rows must
/// hold at least two different classes. The options' <see cref="TextClassificationOptions.ValidationSet"/>
/// must have the same label key (apply the same fitted <c>MapValueToKey</c>).
/// </para>
/// </remarks>
public sealed class TextClassificationEstimator : IEstimator<TextClassificationTransformer>
{
    private readonly IHost _host;
    private readonly TextClassificationColumns _columns;
    private readonly int _batchSize;
    private readonly IDataView? _validationSet;
    private readonly IProgress<TrainingProgress>? _progress;
    private readonly CancellationToken _cancellationToken;
    private readonly ITextClassificationTrainer _trainer;
    private readonly string _modelFormat;
    private readonly string _formatAssembly;

    /// <summary>Creates the estimator. Catalog extension methods call this; users call those.</summary>
    /// <param name="env">The ML.NET environment (an <c>MLContext</c>, or the one behind a catalog).</param>
    /// <param name="task">Multiclass (key label) or binary (Boolean label).</param>
    /// <param name="options">Column names, scoring batch size, validation set, progress and cancellation.</param>
    /// <param name="trainer">Trains the classifier from the rows <see cref="Fit"/> reads.</param>
    /// <param name="modelFormat">
    /// The model format of the classifiers <paramref name="trainer"/> returns, declared with a
    /// <see cref="TextClassificationModelFormatAttribute"/> in the trainer's assembly, this library, or any loaded assembly.
    /// </param>
    public TextClassificationEstimator(IHostEnvironment env, TextClassificationTask task, TextClassificationOptions options, ITextClassificationTrainer trainer, string modelFormat)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(trainer);
        ArgumentException.ThrowIfNullOrWhiteSpace(modelFormat);
        if (options.BatchSize <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, "BatchSize must be positive.");
        }

        _host = env.Register(nameof(TextClassificationEstimator));
        _columns = TextClassificationColumns.From(task, options);
        _batchSize = options.BatchSize;
        _validationSet = options.ValidationSet;
        _progress = options.Progress;
        _cancellationToken = options.CancellationToken;
        _trainer = trainer;
        _modelFormat = modelFormat;
        // Fail now, not after hours of training, if the model could never be loaded again.
        _formatAssembly = TextClassificationModelFormats.FindDeclaringAssembly(modelFormat, [trainer.GetType().Assembly, typeof(TextClassificationEstimator).Assembly])
            .GetName().Name!;
    }

    /// <summary>Whether this estimator trains a multiclass or a binary classifier.</summary>
    public TextClassificationTask Task => _columns.Task;

    /// <summary>Trains a classifier on <paramref name="input"/>.</summary>
    /// <param name="input">Data with the text and label columns.</param>
    /// <returns>The trained transformer.</returns>
    public TextClassificationTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var labels = TextClassificationSchema.CheckTrainingColumns(input.Schema, _columns);
        var training = ReadExamples(input, "training data");
        if (training.Count == 0)
        {
            throw new InvalidOperationException("The training data has no rows.");
        }

        if (training.Labels.Distinct().Count() < 2)
        {
            throw new InvalidOperationException(
                $"Every training row has the class '{labels.ClassNames[training.Labels[0]]}' in label column '{_columns.Label}'; " +
                "a classifier needs rows of at least two classes.");
        }

        LabeledTexts? validation = null;
        if (_validationSet is not null)
        {
            var validationLabels = TextClassificationSchema.CheckTrainingColumns(_validationSet.Schema, _columns);
            if (!validationLabels.SameClassesAs(labels))
            {
                throw new InvalidOperationException(
                    $"The validation set's label '{_columns.Label}' has classes [{string.Join(", ", validationLabels.ClassNames)}] but the training data's has " +
                    $"[{string.Join(", ", labels.ClassNames)}]. Transform the validation set with the same fitted MapValueToKey as the training data.");
            }

            validation = ReadExamples(_validationSet, "validation set");
        }

        using var channel = _host.Start("Training text classifier");
        using var cancellation = new HostCancellation(_host, _cancellationToken);
        var context = new TextClassificationTrainingContext(_host.Rand.Next(), cancellation.Token,
            message => channel.Info(MessageSensitivity.None, message), _progress, cancellation.Poll);
        channel.Info(MessageSensitivity.None,
            $"Training a {_columns.Task.ToString().ToLowerInvariant()} '{_modelFormat}' classifier on {training.Count} rows, {labels.ClassCount} classes" +
            (validation is null ? "." : $", validating on {validation.Count} rows."));

        var classifier = _trainer.Train(training, validation, labels.ClassNames, context)
            ?? throw new InvalidOperationException($"The '{_modelFormat}' trainer returned no classifier.");
        if (classifier.ClassCount != labels.ClassCount)
        {
            classifier.Dispose();
            throw new InvalidOperationException(
                $"The '{_modelFormat}' trainer returned a classifier with {classifier.ClassCount} classes; the label '{_columns.Label}' has {labels.ClassCount}.");
        }

        return new TextClassificationTransformer(_host, _columns, _batchSize, classifier, _modelFormat, _formatAssembly, labels);
    }

    /// <summary>The schema <see cref="Fit"/>'s transformer would produce: the input's columns, then the output columns.</summary>
    /// <param name="inputSchema">The shape of the training data; it must hold the text and label columns.</param>
    /// <returns>The output shape.</returns>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        TextClassificationSchema.CheckTrainingShape(inputSchema, _columns);
        return TextClassificationSchema.OutputShape(inputSchema, _columns);
    }

    /// <summary>Reads the text and label columns into memory, rejecting rows whose label is missing.</summary>
    private LabeledTexts ReadExamples(IDataView data, string what)
    {
        var reading = TransformerTelemetry.Start(TransformerTelemetry.ReadRows);
        var schema = data.Schema;
        var textColumn = schema[_columns.Text];
        var secondColumn = _columns.SecondText is { } secondName ? schema[secondName] : (DataViewSchema.Column?)null;
        var labelColumn = schema[_columns.Label];
        var active = secondColumn is { } s ? new[] { textColumn, s, labelColumn } : [textColumn, labelColumn];

        var texts = new List<string>();
        var secondTexts = secondColumn is null ? null : new List<string>();
        var classes = new List<int>();
        using var cursor = data.GetRowCursor(active);
        var text = cursor.GetGetter<ReadOnlyMemory<char>>(textColumn);
        var secondText = secondColumn is { } c ? cursor.GetGetter<ReadOnlyMemory<char>>(c) : null;
        var readClass = MakeClassReader(cursor, labelColumn, what);
        while (cursor.MoveNext())
        {
            _cancellationToken.ThrowIfCancellationRequested();
            texts.Add(TextClassificationDataView.ReadText(text));
            secondTexts?.Add(TextClassificationDataView.ReadText(secondText!));
            classes.Add(readClass());
        }

        TransformerTelemetry.Stop(TransformerTelemetry.ReadRows, reading);
        return new LabeledTexts(texts, secondTexts, classes);
    }

    private Func<int> MakeClassReader(DataViewRowCursor cursor, DataViewSchema.Column labelColumn, string what)
    {
        if (_columns.Task == TextClassificationTask.Binary)
        {
            var getter = cursor.GetGetter<bool>(labelColumn);
            return () =>
            {
                var value = false;
                getter(ref value);
                return value ? 1 : 0;
            };
        }

        var keyGetter = cursor.GetGetter<uint>(labelColumn);
        return () =>
        {
            uint key = 0;
            keyGetter(ref key);
            if (key == 0)
            {
                throw new InvalidOperationException(
                    $"Row {cursor.Position} of the {what} has no label: column '{_columns.Label}' holds the missing key (0), " +
                    "which MapValueToKey gives to empty labels and to values it did not see when fitted. Remove such rows first, " +
                    $"for example with mlContext.Data.FilterRowsByMissingValues(data, \"{_columns.Label}\").");
            }

            return (int)key - 1;
        };
    }
}
