using Microsoft.ML;
using MLNetTransformerExtensions.Export;
using MLNetTransformerExtensions.MLNet;

namespace MLNetTransformerExtensions.Onnx;

/// <summary>
/// <c>mlContext.Transforms.ScoreExportedTextClassifier(folder)</c>: a classifier exported to ONNX, scored by ONNX Runtime
/// in an ML.NET pipeline with the columns the TorchSharp trainers add.
/// </summary>
/// <remarks>
/// <para><b>Input and output columns</b>: the exported classifier's text column (and second text column), String.
/// Multiclass: <c>Score</c> (vector of class probabilities, with the class names as slot names) and <c>PredictedLabel</c>
/// (a key whose values are the class names: <c>MapKeyToValue</c> gives the class). Binary: <c>Score</c> (log-odds),
/// <c>Probability</c> and <c>PredictedLabel</c> (Boolean).</para>
/// <para><b>Characteristics</b>: <c>Fit</c> reads no rows; <c>Transform</c> is lazy and scores <c>BatchSize</c> rows at a time,
/// sorted by length into passes of similar length; the exported files are saved inside the ML.NET model file, and a
/// loaded model scores on the CPU.</para>
/// </remarks>
/// <example>
/// <code>
/// mlContext.Model.ExportTextClassifier(trainedModel, "exported");
/// var scorer = mlContext.Transforms.ScoreExportedTextClassifier("exported").Fit(data);
/// IDataView scored = scorer.Transform(data);
/// </code>
/// </example>
public static class OnnxTextClassifierCatalog
{
    /// <summary>Scores with an exported ONNX classifier on the CPU, reading the column names it was trained with.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="exportedFolder">A folder written by <c>ExportTextClassifier</c> (or the CLI's export) in the ONNX format.</param>
    /// <returns>The estimator.</returns>
    public static PretrainedTextClassificationEstimator ScoreExportedTextClassifier(this TransformsCatalog catalog, string exportedFolder)
    {
        var export = ExportedTextClassifier.Read(exportedFolder);
        return catalog.ScoreExportedTextClassifier(exportedFolder, new OnnxTextClassifierOptions
        {
            TextColumnName = export.TextColumnName,
            SecondTextColumnName = export.SecondTextColumnName,
            LabelColumnName = export.LabelColumnName,
        });
    }

    /// <summary>Scores with an exported ONNX classifier with every option (columns, batch size, CPU or CUDA).</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="exportedFolder">A folder written by <c>ExportTextClassifier</c> (or the CLI's export) in the ONNX format.</param>
    /// <param name="options">The options.</param>
    /// <returns>The estimator.</returns>
    public static PretrainedTextClassificationEstimator ScoreExportedTextClassifier(this TransformsCatalog catalog, string exportedFolder, OnnxTextClassifierOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        var export = ExportedTextClassifier.Read(exportedFolder);
        if (export.Format != TextClassifierExportFormat.Onnx)
        {
            throw new ArgumentException($"'{exportedFolder}' is a {export.Format} export; ONNX Runtime scores the ONNX format.", nameof(exportedFolder));
        }

        if ((export.SecondTextColumnName is null) != (options.SecondTextColumnName is null))
        {
            throw new ArgumentException(export.SecondTextColumnName is null
                ? $"The classifier in '{exportedFolder}' reads single texts; set no SecondTextColumnName."
                : $"The classifier in '{exportedFolder}' reads text pairs; set SecondTextColumnName (it was trained with '{export.SecondTextColumnName}').", nameof(options));
        }

        // Fails now, not at the first Fit, when CUDA or the graph is unusable.
        OnnxTextClassificationModel.Load(exportedFolder, options.ExecutionProvider, options.GpuDeviceId, options.IntraOpNumThreads).Dispose();
        var folder = Path.GetFullPath(exportedFolder);
        var (provider, device, threads) = (options.ExecutionProvider, options.GpuDeviceId, options.IntraOpNumThreads);
        return new PretrainedTextClassificationEstimator(catalog, export.Task, options, export.ClassNames,
            () => OnnxTextClassificationModel.Load(folder, provider, device, threads), OnnxTextClassificationModel.Format);
    }
}
