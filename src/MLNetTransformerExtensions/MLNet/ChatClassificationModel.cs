using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>The ML.NET face of a <see cref="ChatClassifier"/>. It does not own its client: the caller disposes that.</summary>
internal sealed class ChatClassificationModel(ChatClassifier inner) : ITextClassificationModel
{
    /// <summary>Stored in model files to find the loader: never rename.</summary>
    public const string Format = "chat";

    public ChatClassifier Inner { get; } = inner;

    public int ClassCount => Inner.Labels.Count;

    public float[][] PredictProbabilities(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts) =>
        Inner.PredictProbabilities(texts, secondTexts);

    public void SaveTo(string folder) => Inner.Save(folder);

    public void Dispose()
    {
    }
}
