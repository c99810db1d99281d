using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>Restores a <see cref="PromptClassificationModel"/> from the folder stored in a model file.</summary>
internal sealed class PromptClassificationModelLoader : ITextClassificationModelLoader
{
    public ITextClassificationModel Load(string folder) => new PromptClassificationModel(PromptClassifier.Load(folder));
}
