using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// A classifier whose predictions <see cref="TextClassificationTransformer.Explain(IReadOnlyList{string}, IReadOnlyList{string}, TokenAttributionOptions)"/>
/// can attribute to tokens: one of this library's transformer classifiers.
/// </summary>
internal interface IExplainableTextClassificationModel
{
    /// <summary>The classifier the attributions differentiate.</summary>
    IExplainableClassifier Explainable { get; }
}
