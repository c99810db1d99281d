using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>Restores a <see cref="HeadClassificationModel"/> from the folder stored in a model file.</summary>
internal sealed class HeadClassificationModelLoader : ITextClassificationModelLoader
{
    public ITextClassificationModel Load(string folder) => new HeadClassificationModel(HeadClassifier.Load(folder));
}
