using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>The ML.NET face of a <see cref="HeadClassifier"/>.</summary>
internal sealed class HeadClassificationModel(HeadClassifier inner) : ITextClassificationModel, IInferencePrecisionSetting, IExplainableTextClassificationModel
{
    /// <summary>Stored in model files to find the loader: never rename.</summary>
    public const string Format = "transformer";

    public HeadClassifier Inner => inner;

    public IExplainableClassifier Explainable => inner;

    public int ClassCount => inner.Labels.Count;

    public InferencePrecision InferencePrecision
    {
        get => inner.InferencePrecision;
        set => inner.InferencePrecision = value;
    }

    public float[][] PredictProbabilities(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts) =>
        inner.PredictProbabilities(texts, secondTexts, Math.Max(1, texts.Count));

    public void SaveTo(string folder) => inner.Save(folder);

    public void Dispose() => inner.Dispose();
}
