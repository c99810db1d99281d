using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>The ML.NET face of a SetFit classifier (a sentence encoder and a logistic-regression head).</summary>
internal sealed class SetFitClassificationModel(SetFitClassifier inner) : ITextClassificationModel, IInferencePrecisionSetting
{
    /// <summary>Stored in model files to find the loader: never rename.</summary>
    public const string Format = "setfit";

    public SetFitClassifier Inner => inner;

    public int ClassCount => inner.Labels.Count;

    public InferencePrecision InferencePrecision
    {
        get => inner.Encoder.InferencePrecision;
        set => inner.Encoder.InferencePrecision = value;
    }

    public float[][] PredictProbabilities(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts) =>
        inner.PredictProbabilities(texts, Math.Max(1, texts.Count));

    public void SaveTo(string folder) => inner.Save(folder);

    public void Dispose() => inner.Dispose();
}

/// <summary>Restores a <see cref="SetFitClassificationModel"/> from the folder stored in a model file.</summary>
internal sealed class SetFitClassificationModelLoader : ITextClassificationModelLoader
{
    public ITextClassificationModel Load(string folder) => new SetFitClassificationModel(SetFitClassifier.Load(folder));
}
