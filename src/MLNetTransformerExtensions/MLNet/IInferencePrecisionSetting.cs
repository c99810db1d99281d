using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>A classifier that can score in another number format than float32.</summary>
internal interface IInferencePrecisionSetting
{
    /// <summary>The number format scoring runs in.</summary>
    InferencePrecision InferencePrecision { get; set; }
}
