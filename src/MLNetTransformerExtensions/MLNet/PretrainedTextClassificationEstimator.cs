using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLNetTransformerExtensions.MLNet.Internal;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// An estimator for a text classifier that is already trained (an exported ONNX model, say): <see cref="Fit"/> reads
/// no rows; it checks the text column(s) and wraps the classifier in a <see cref="TextClassificationTransformer"/>, so
/// scoring, <c>PredictionEngine</c>, evaluation, saving and loading work as for a classifier trained in ML.NET.
/// </summary>
/// <remarks>
/// <para><b>Input and output columns</b>: the text column (and the second text column of a pair classifier), String.
/// Outputs as <see cref="TextClassificationEstimator"/>'s: multiclass <c>Score</c> (class probabilities) and
/// <c>PredictedLabel</c> (a key whose values are the class names); binary <c>Score</c> (log-odds), <c>Probability</c> and
/// <c>PredictedLabel</c> (Boolean). No label column is read.</para>
/// </remarks>
public sealed class PretrainedTextClassificationEstimator : IEstimator<TextClassificationTransformer>
{
    private readonly IHost _host;
    private readonly TextClassificationColumns _columns;
    private readonly int _batchSize;
    private readonly TextClassificationLabels _labels;
    private readonly Func<ITextClassificationModel> _loadClassifier;
    private readonly string _modelFormat;
    private readonly string _formatAssembly;

    /// <summary>Creates the estimator. Packages that score exported classifiers call this from their catalog methods.</summary>
    /// <param name="catalog">The transforms catalog (<c>mlContext.Transforms</c>) whose environment the estimator uses.</param>
    /// <param name="task">Multiclass or binary: which columns are added.</param>
    /// <param name="options">Column names and the scoring batch size (the label column is not read).</param>
    /// <param name="classNames">The class names in score order; for binary tasks exactly two (false, true).</param>
    /// <param name="loadClassifier">Makes the classifier; called once per <see cref="Fit"/> (the transformer owns and disposes it).</param>
    /// <param name="modelFormat">The classifier's model format, declared with a <see cref="TextClassificationModelFormatAttribute"/> in a loaded assembly.</param>
    public PretrainedTextClassificationEstimator(TransformsCatalog catalog, TextClassificationTask task, TextClassificationOptions options,
        IReadOnlyList<string> classNames, Func<ITextClassificationModel> loadClassifier, string modelFormat)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(classNames);
        ArgumentNullException.ThrowIfNull(loadClassifier);
        ArgumentException.ThrowIfNullOrWhiteSpace(modelFormat);
        if (options.BatchSize <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, "BatchSize must be positive.");
        }

        _host = catalog.GetHostEnvironment().Register(nameof(PretrainedTextClassificationEstimator));
        _columns = TextClassificationColumns.From(task, options);
        _batchSize = options.BatchSize;
        if (task == TextClassificationTask.Binary)
        {
            if (classNames.Count != 2)
            {
                throw new ArgumentException($"A binary classifier has two classes (false, true); {classNames.Count} class names were given.", nameof(classNames));
            }

            _labels = TextClassificationLabels.Binary;
        }
        else
        {
            if (classNames.Count < 2)
            {
                throw new ArgumentException($"A multiclass classifier needs at least two classes; {classNames.Count} class name(s) were given.", nameof(classNames));
            }

            var names = classNames.Select(n => n.AsMemory()).ToArray();
            _labels = TextClassificationLabels.FromKeyValues(names.Length, new VectorDataViewType(TextDataViewType.Instance, names.Length),
                new VBuffer<ReadOnlyMemory<char>>(names.Length, names));
        }

        _loadClassifier = loadClassifier;
        _modelFormat = modelFormat;
        _formatAssembly = TextClassificationModelFormats.FindDeclaringAssembly(modelFormat, [typeof(PretrainedTextClassificationEstimator).Assembly]).GetName().Name!;
    }

    /// <summary>Whether the classifier is multiclass or binary.</summary>
    public TextClassificationTask Task => _columns.Task;

    /// <summary>Checks the text column(s) of <paramref name="input"/> and wraps a newly made classifier.</summary>
    /// <param name="input">Data with the text column(s); its rows are not read.</param>
    /// <returns>The transformer.</returns>
    public TextClassificationTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        TextClassificationSchema.CheckTextColumns(input.Schema, _columns);
        var classifier = _loadClassifier() ?? throw new InvalidOperationException($"The '{_modelFormat}' classifier factory returned null.");
        if (classifier.ClassCount != _labels.ClassCount)
        {
            classifier.Dispose();
            throw new InvalidOperationException($"The '{_modelFormat}' classifier has {classifier.ClassCount} classes; {_labels.ClassCount} class names were given.");
        }

        return new TextClassificationTransformer(_host, _columns, _batchSize, classifier, _modelFormat, _formatAssembly, _labels);
    }

    /// <summary>The input's columns, then the output columns.</summary>
    /// <param name="inputSchema">The shape of the data to score; it must hold the text column(s).</param>
    /// <returns>The output shape.</returns>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        TextClassificationSchema.CheckTextShape(inputSchema, _columns);
        return TextClassificationSchema.OutputShape(inputSchema, _columns, _labels.KeyValuesType?.ItemType);
    }
}
