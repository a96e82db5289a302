/**
 * The `models` namespace, as torchvision's: `models.segmentation` holds the semantic-
 * segmentation models with their published weights.
 */
import * as segmentation from './segmentation';

export { segmentation };
