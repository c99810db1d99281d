using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace MLNetTransformerExtensions.MLNet.Internal;

/// <summary>The ML.NET environment behind a catalog, which catalog extension methods pass to estimators.</summary>
internal static class CatalogEnvironment
{
    /// <summary>The environment of a trainers catalog, such as <c>mlContext.MulticlassClassification.Trainers</c>.</summary>
    public static IHostEnvironment GetHostEnvironment(this TrainCatalogBase.CatalogInstantiatorBase catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return CatalogUtils.GetEnvironment(catalog);
    }

    /// <summary>The environment of a task catalog, such as <c>mlContext.MulticlassClassification</c>.</summary>
    public static IHostEnvironment GetHostEnvironment(this TrainCatalogBase catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return CatalogUtils.GetEnvironment(catalog);
    }

    /// <summary>The environment of the text transforms, <c>mlContext.Transforms.Text</c>.</summary>
    public static IHostEnvironment GetHostEnvironment(this TransformsCatalog.TextTransforms catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return CatalogUtils.GetEnvironment(catalog);
    }

    /// <summary>The environment of <c>mlContext.Transforms</c>.</summary>
    public static IHostEnvironment GetHostEnvironment(this TransformsCatalog catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return CatalogUtils.GetEnvironment(catalog);
    }
}
