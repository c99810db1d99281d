using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>Restores a <see cref="ChatClassificationModel"/> from the folder stored in a model file; it has no client until given one.</summary>
internal sealed class ChatClassificationModelLoader : ITextClassificationModelLoader
{
    public ITextClassificationModel Load(string folder) => new ChatClassificationModel(ChatClassifier.Load(folder));
}
